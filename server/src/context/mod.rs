//! What a delegated task is about: the TODO under the cursor, the code around it,
//! and the prompt and title that the agent and the user see.
//!
//! Pure functions over text, shared by the LSP layer and the CLI: no I/O and no LSP
//! types. Lines are 0-based and columns are byte offsets within a line; converting
//! LSP positions is the LSP layer's job. Every function reads a bounded window of
//! lines around the ones it is given, never the whole text, so a code action in a
//! 10 MB file still answers in about a millisecond.
//!
//! The flow of a TODO code action:
//!
//! ```text
//! language = Language::detect(lsp_language_id, path)
//! todo     = find_todo(text, cursor_line, language)?            // offer the action
//! context  = code_context(text, todo.lines, language)           // enclosing block or ±20 lines
//! request  = PromptRequest { path, language, instruction: &todo.description(),
//!                            target: Target::Todo(&todo), context: Some(&context) }
//! prompt   = build_prompt(&request); title = title(&request)
//! ```
//!
//! Files: `language.rs` (detection, comment syntax), `lexer.rs` (comments versus
//! strings versus code, line by line), `lines.rs` (line ranges, windows over large
//! texts), `todo.rs`, `enclosing.rs`, `prompt.rs`.

mod enclosing;
mod language;
mod lexer;
mod lines;
mod prompt;
mod todo;

#[cfg(test)]
mod fixture;

pub use enclosing::{
    code_context, enclosing_block, enclosing_block_of, CodeContext, ContextKind, MAX_BLOCK_LINES,
    SURROUNDING_LINES,
};
pub use language::{BlockComment, CommentSyntax, Language};
pub use lines::{excerpt, surrounding_lines, LineRange};
pub use prompt::{
    build_prompt, title, PromptRequest, Target, MAX_CONTEXT_BYTES, MAX_CONTEXT_LINES,
    MAX_TITLE_CHARS,
};
pub use todo::{find_todo, Marker, Todo};

#[cfg(test)]
mod tests {
    use super::*;

    /// Odd text (unclosed comments and strings, stray delimiters, multi-byte
    /// characters, CRLF) in every language: no panic, and ranges inside the text.
    #[test]
    fn never_panics_on_odd_text() {
        const PIECES: &[&str] = &[
            "/*", "*/", "//", "#", "--", ";", "\"", "'", "\"\"\"", "'''", "`", "{", "}", "(", ")",
            "[[", "]]", "<!--", "-->", "{-", "-}", "\\", "TODO:", "FIXME(a)", " ", "\t", "é", "→",
            "x", "def f():", "fn f() {", "\n", "\n", "\r\n", "    ",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..100 {
            let count = 5 + next() % 80;
            let text: String = (0..count)
                .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                .collect();
            let line_count = text.split('\n').count();
            for &language in Language::ALL {
                for line in 0..=line_count {
                    if let Some(todo) = find_todo(&text, line, language) {
                        assert!(todo.lines.contains(line) && todo.lines.last < line_count);
                        let context = code_context(&text, todo.lines, language);
                        assert!(context.lines.last < line_count, "{text:?}");
                        let instruction = todo.description();
                        let request = PromptRequest {
                            path: "a",
                            language,
                            instruction: &instruction,
                            target: Target::Todo(&todo),
                            context: Some(&context),
                        };
                        assert!(!build_prompt(&request).is_empty());
                        assert!(!title(&request).is_empty());
                    }
                    let end = (line + 3).min(line_count);
                    if let Some(block) =
                        enclosing_block_of(&text, LineRange::new(line, end), language)
                    {
                        assert!(block.first <= line && block.last < line_count, "{text:?}");
                    }
                }
            }
        }
    }
}
