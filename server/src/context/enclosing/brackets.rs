//! Blocks delimited by brackets: `{ }` in C-like languages, `( )` in Lisps.
//!
//! From the end of the target's last line, an unmatched opening bracket found
//! upwards and an unmatched closing bracket found downwards delimit a block; the
//! k-th of each pair up, innermost first. Brackets in comments and strings do not
//! count.

use super::header::{classify, is_name_char};
use super::{
    code_bytes, code_text, definition_below, net_opens, with_leading_comments, Block,
    MAX_BLOCK_LINES, MAX_HEADER_LINES,
};
use crate::context::lexer::Lexed;
use crate::context::lines::LineRange;

/// Blocks delimited by `open` and `close` around `target`, innermost first.
pub(super) fn bracket_blocks(
    lexed: &Lexed<'_>,
    target: LineRange,
    open: u8,
    close: u8,
) -> Vec<Block> {
    // A comment right above a definition is about that definition.
    let anchor = definition_below(lexed, target, |text, line| {
        net_opens(text, line, open, close) > 0
    })
    .unwrap_or(target.last);

    let mut opens = Vec::new();
    let mut depth = 0usize;
    let lowest = anchor.saturating_sub(MAX_BLOCK_LINES).max(lexed.first());
    for line in (lowest..=anchor).rev() {
        let Some((text, lexed_line)) = lexed.get(line) else {
            continue;
        };
        for byte in code_bytes(text, lexed_line).rev() {
            if byte == close {
                depth += 1;
            } else if byte == open {
                match depth.checked_sub(1) {
                    Some(outer) => depth = outer,
                    None => opens.push(line),
                }
            }
        }
    }

    let mut closes = Vec::new();
    depth = 0;
    for line in anchor + 1..lexed.end() {
        if closes.len() >= opens.len() || line > anchor + MAX_BLOCK_LINES {
            break;
        }
        let Some((text, lexed_line)) = lexed.get(line) else {
            break;
        };
        for byte in code_bytes(text, lexed_line) {
            if byte == open {
                depth += 1;
            } else if byte == close {
                match depth.checked_sub(1) {
                    Some(inner) => depth = inner,
                    None => closes.push(line),
                }
            }
        }
    }

    opens
        .iter()
        .zip(closes)
        .map(|(&open_line, close_line)| {
            let signature = signature_start(lexed, open_line);
            let first = with_leading_comments(lexed, signature);
            let kind = classify(lexed, signature, open_line);
            Block {
                lines: LineRange::new(first, close_line),
                kind,
            }
        })
        .collect()
}

/// The first line of the signature of the block whose opening bracket is on
/// `open_line`, for signatures wrapped over several lines.
fn signature_start(lexed: &Lexed<'_>, open_line: usize) -> usize {
    let mut first = open_line;
    for _ in 0..MAX_HEADER_LINES {
        let Some(previous) = first.checked_sub(1) else {
            break;
        };
        let (Some((text, current)), Some((previous_text, previous_line))) =
            (lexed.get(first), lexed.get(previous))
        else {
            break;
        };
        let current = code_text(text, current);
        let previous_code = code_text(previous_text, previous_line);
        let wrapped = previous_code.ends_with(['(', ',', '=', '>', ':'])
            || previous_code.ends_with("where")
            || current.starts_with(['{', ')', '.', ':', '-', '=', '&', '|', '+'])
            || current.starts_with("where")
            || (is_return_type(&previous_code) && starts_with_name_and_parameters(&current));
        if previous_code.is_empty() || previous_code.ends_with([';', '{', '}']) || !wrapped {
            break;
        }
        first = previous;
    }
    first
}

fn starts_with_name_and_parameters(code: &str) -> bool {
    let name = code.find(|c: char| !is_name_char(c)).unwrap_or(code.len());
    name > 0 && code[name..].trim_start().starts_with('(')
}

/// GNU style puts a C function's return type on a line of its own: `static int`.
fn is_return_type(code: &str) -> bool {
    code.chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '_' | ' ' | '*' | '&' | ':' | '<' | '>'))
        && code.chars().next().is_some_and(char::is_alphabetic)
}
