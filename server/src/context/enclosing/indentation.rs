//! Blocks read from indentation: Python, YAML, and `end`-terminated languages
//! (Ruby, Lua, shell), whose code is indented in practice.
//!
//! A block is a header line and the lines indented deeper than it below; a closing
//! line at the header's indentation (`end`, `}`) belongs to the block. Blank lines,
//! comments and the inside of multi-line strings do not decide where a block ends.

use super::header::classify;
use super::{
    code_text, definition_below, net_opens, with_leading_comments, Block, BlockKind,
    MAX_BLOCK_LINES, MAX_HEADER_LINES,
};
use crate::context::lexer::{Lexed, LexedLine, Mode};
use crate::context::lines::LineRange;

/// Blocks read from indentation around `target`, innermost first.
pub(super) fn indented_blocks(lexed: &Lexed<'_>, target: LineRange) -> Vec<Block> {
    let Some(target_indent) = (target.first..=target.last)
        .filter_map(|line| {
            lexed
                .get(line)
                .and_then(|(text, lexed_line)| written_indent(text, lexed_line))
        })
        .min()
    else {
        return Vec::new();
    };
    let mut blocks = Vec::new();
    let mut current = target_indent;
    let own_header = if is_indented_header(lexed, target.first) {
        Some(target.first)
    } else {
        definition_below(lexed, target, |text, lexed_line| {
            lexed_line.start == Mode::Code && indent(text) == target_indent
        })
        .filter(|&line| is_indented_header(lexed, line))
    };
    if let Some(header) = own_header {
        blocks.push(indented_block(lexed, header, target));
        current = lexed.get(header).map_or(current, |(text, _)| indent(text));
    }
    let lowest = target
        .first
        .saturating_sub(MAX_BLOCK_LINES)
        .max(lexed.first());
    for line in (lowest..target.first).rev() {
        if current == 0 {
            break;
        }
        let Some((text, lexed_line)) = lexed.get(line) else {
            continue;
        };
        if code_indent(text, lexed_line).is_some_and(|found| found < current)
            && !starts_with_closer(&code_text(text, lexed_line))
        {
            blocks.push(indented_block(lexed, line, target));
            current = indent(text);
        }
    }
    blocks
}

/// The block under the header on `header`, reaching at least to `target.last`.
fn indented_block(lexed: &Lexed<'_>, header: usize, target: LineRange) -> Block {
    let Some((header_text, _)) = lexed.get(header) else {
        return Block {
            lines: LineRange::line(header),
            kind: BlockKind::Other,
        };
    };
    let header_indent = indent(header_text);
    let mut last = header.max(target.last);
    let mut line = last + 1;
    loop {
        if line > header + MAX_BLOCK_LINES {
            // Too long to show; `choose` rejects it by its size.
            last = line;
            break;
        }
        let Some((text, lexed_line)) = lexed.get(line) else {
            if !lexed.reaches_end() {
                last = line;
            }
            break;
        };
        if lexed_line.start != Mode::Code {
            last = line;
        } else if let Some(found) = written_indent(text, lexed_line) {
            if found > header_indent {
                last = line;
            } else if lexed_line.has_code {
                if found == header_indent && starts_with_closer(&code_text(text, lexed_line)) {
                    last = line;
                }
                break;
            }
        }
        line += 1;
    }
    let signature = indented_header_start(lexed, header);
    let first = with_leading_comments(lexed, signature);
    Block {
        lines: LineRange::new(first, last),
        kind: classify(lexed, signature, header),
    }
}

/// A Python signature wrapped over several lines ends in a line like `) -> int:`;
/// its header starts where the parenthesis opens.
fn indented_header_start(lexed: &Lexed<'_>, header: usize) -> usize {
    let mut depth = 0isize;
    for line in (header.saturating_sub(MAX_HEADER_LINES)..=header).rev() {
        let Some((text, lexed_line)) = lexed.get(line) else {
            break;
        };
        depth += net_opens(text, lexed_line, b')', b'(') + net_opens(text, lexed_line, b']', b'[');
        if depth <= 0 {
            return line;
        }
    }
    header
}

/// Whether the code after `line` is indented under it.
fn is_indented_header(lexed: &Lexed<'_>, line: usize) -> bool {
    let Some(own) = lexed
        .get(line)
        .and_then(|(text, lexed_line)| code_indent(text, lexed_line))
    else {
        return false;
    };
    (line + 1..=line + MAX_HEADER_LINES)
        .find_map(|next| {
            lexed
                .get(next)
                .and_then(|(text, lexed_line)| code_indent(text, lexed_line))
        })
        .is_some_and(|next| next > own)
}

/// The indentation of a line of code, `None` for blank and comment-only lines and
/// for lines inside multi-line strings.
fn code_indent(text: &str, lexed_line: &LexedLine) -> Option<usize> {
    (lexed_line.start == Mode::Code && lexed_line.has_code).then(|| indent(text))
}

/// The indentation of a line of code or comment, `None` for blank lines and lines
/// inside multi-line strings or comments.
fn written_indent(text: &str, lexed_line: &LexedLine) -> Option<usize> {
    let written = lexed_line.has_code || !lexed_line.comments.is_empty();
    (lexed_line.start == Mode::Code && written && !text.trim().is_empty()).then(|| indent(text))
}

fn indent(text: &str) -> usize {
    text.chars()
        .take_while(|c| c.is_whitespace())
        .map(|c| if c == '\t' { 4 } else { 1 })
        .sum()
}

/// Lines that close a block rather than open one: `end`, `}`, `fi`…
fn starts_with_closer(code: &str) -> bool {
    let first_word = code
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .next()
        .unwrap_or("");
    code.starts_with(['}', ')', ']'])
        || code.starts_with("</")
        || matches!(first_word, "end" | "fi" | "done" | "esac")
}
