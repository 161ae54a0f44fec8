//! Tells comments, string literals and code apart, one line at a time.
//!
//! A line's meaning depends on the lines above it (is it inside a `/* */` block or a
//! docstring?), but reading a 10 MB file from the top on every code action is too
//! slow. So [`lex`] starts a bounded number of lines above the lines it is asked
//! about and corrects its guess at that starting point where the text gives it
//! away: a stray `*/` means the start was inside a block comment, and a Python
//! `def` line is always code.

use std::ops::Range;

use super::language::{BlockComment, CommentSyntax, Language, StringSyntax};
use super::lines::Window;

/// How many lines above the requested ones the lexer starts; block comments and
/// docstrings longer than this may be misread.
const LOOKBACK: usize = 300;
/// Longer lines (minified code, data) are taken for code without reading them, so
/// that one 10 MB line does not slow every request down.
const MAX_LINE_BYTES: usize = 64 * 1024;

/// What the lexer is inside of where a line starts or ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Code,
    /// Inside the block comment `CommentSyntax::block[index]`, nested `depth` deep.
    Block {
        index: usize,
        depth: u32,
    },
    Docstring {
        index: usize,
    },
    /// Inside the multi-line string literal `StringSyntax::quotes[index]`.
    MultilineString {
        index: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CommentKind {
    Line { index: usize },
    Block { index: usize },
    Docstring { index: usize },
}

/// The part of one comment that lies on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Comment {
    pub(crate) kind: CommentKind,
    /// Column of the opening delimiter; `None` when the comment began above.
    pub(crate) open: Option<usize>,
    /// The text between the delimiters, on this line.
    pub(crate) body: Range<usize>,
    /// Whether the comment ends on this line.
    pub(crate) closed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LexedLine {
    pub(crate) start: Mode,
    pub(crate) comments: Vec<Comment>,
    /// Code outside comments and string literals, for bracket matching.
    pub(crate) code: Vec<Range<usize>>,
    /// Whether anything but comments and whitespace is on the line; a string literal
    /// counts, the rest of one that began above does not.
    pub(crate) has_code: bool,
    pub(crate) end: Mode,
    /// The block comment (by index) whose closing delimiter ends this line while the
    /// lexer thought it was in code.
    stray_close: Option<usize>,
    opens_block: bool,
}

impl LexedLine {
    /// Whether the line holds comments and nothing else.
    pub(crate) fn is_comment_only(&self) -> bool {
        !self.has_code && !self.comments.is_empty()
    }
}

/// Lines of a text with their lexing.
pub(crate) struct Lexed<'a> {
    window: Window<'a>,
    lines: Vec<LexedLine>,
}

impl<'a> Lexed<'a> {
    pub(crate) fn get(&self, line: usize) -> Option<(&'a str, &LexedLine)> {
        let text = self.window.get(line)?;
        Some((text, self.lines.get(line - self.window.first())?))
    }

    pub(crate) fn first(&self) -> usize {
        self.window.first()
    }

    /// One past the last line.
    pub(crate) fn end(&self) -> usize {
        self.window.end()
    }

    /// Whether the last line of the text is lexed.
    pub(crate) fn reaches_end(&self) -> bool {
        self.window.reaches_end()
    }

    pub(crate) fn window(&self) -> &Window<'a> {
        &self.window
    }
}

/// Lexes at least lines `first..=last` of `text` (fewer where the text ends).
pub(crate) fn lex<'a>(text: &'a str, first: usize, last: usize, language: Language) -> Lexed<'a> {
    let lexer = Lexer::new(language);
    let window = Window::new(text, first.saturating_sub(LOOKBACK), last);
    let start = window.first();
    let mut lines: Vec<LexedLine> = Vec::with_capacity(window.end() - start);
    // At the top of the text the starting mode is known; elsewhere it is a guess
    // that the loop may correct once.
    let mut guessing = start > 0;
    let mut mode = Mode::Code;
    for line in start..window.end() {
        let Some(line_text) = window.get(line) else {
            break;
        };
        if guessing && line < first && language == Language::Python && is_python_header(line_text) {
            mode = Mode::Code;
            guessing = false;
        }
        let lexed = lexer.line(line_text, mode);
        if guessing && lexed.opens_block {
            guessing = false;
        }
        if let (true, Some(index)) = (guessing, lexed.stray_close) {
            guessing = false;
            lines.clear();
            mode = Mode::Block { index, depth: 1 };
            for again in start..=line {
                let again_text = window.get(again).unwrap_or_default();
                let lexed = lexer.line(again_text, mode);
                mode = lexed.end;
                lines.push(lexed);
            }
            continue;
        }
        mode = lexed.end;
        lines.push(lexed);
    }
    Lexed { window, lines }
}

/// A `def` or `class` line is code, whatever came before it.
fn is_python_header(line: &str) -> bool {
    let line = line.trim();
    let line = line.strip_prefix("async ").unwrap_or(line).trim_start();
    (line.starts_with("def ") || line.starts_with("class ")) && line.ends_with(':')
}

pub(crate) struct Lexer {
    comments: CommentSyntax,
    strings: StringSyntax,
}

impl Lexer {
    pub(crate) fn new(language: Language) -> Lexer {
        Lexer {
            comments: language.comments(),
            strings: language.strings(),
        }
    }

    pub(crate) fn line(&self, text: &str, start: Mode) -> LexedLine {
        let mut out = LexedLine {
            start,
            comments: Vec::new(),
            code: Vec::new(),
            has_code: false,
            end: Mode::Code,
            stray_close: None,
            opens_block: false,
        };
        if text.len() > MAX_LINE_BYTES {
            out.has_code = true;
            out.end = start;
            return out;
        }
        let bytes = text.as_bytes();
        let mut mode = start;
        let mut pos = 0;
        // Where the delimiter of the comment being read opened, if on this line.
        let mut open = None;
        loop {
            match mode {
                Mode::Code => match self.next_event(text, pos, &mut out) {
                    None => {
                        push_code(&mut out, text, pos..text.len());
                        out.end = Mode::Code;
                        return out;
                    }
                    Some((at, event)) => {
                        push_code(&mut out, text, pos..at);
                        match event {
                            Event::Line(index) => {
                                let body = at + self.comments.line[index].len();
                                out.comments.push(Comment {
                                    kind: CommentKind::Line { index },
                                    open: Some(at),
                                    body: body..text.len(),
                                    closed: true,
                                });
                                out.end = Mode::Code;
                                return out;
                            }
                            Event::Block(index) => {
                                out.opens_block = true;
                                open = Some(at);
                                pos = at + self.comments.block[index].open.len();
                                mode = Mode::Block { index, depth: 1 };
                            }
                            Event::Docstring(index) => {
                                open = Some(at);
                                pos = at + self.comments.docstring[index].len();
                                mode = Mode::Docstring { index };
                            }
                            Event::Literal(end) => {
                                out.has_code = true;
                                pos = end;
                            }
                            Event::OpenString(index) => {
                                out.has_code = true;
                                out.end = Mode::MultilineString { index };
                                return out;
                            }
                        }
                    }
                },
                Mode::Block { index, depth } => {
                    let syntax = self.comments.block[index];
                    let kind = CommentKind::Block { index };
                    match find_block_close(bytes, pos, syntax, depth) {
                        Ok(at) => {
                            out.comments.push(comment(kind, open.take(), pos..at, true));
                            pos = at + syntax.close.len();
                            mode = Mode::Code;
                        }
                        Err(depth) => {
                            out.comments
                                .push(comment(kind, open, pos..text.len(), false));
                            out.end = Mode::Block { index, depth };
                            return out;
                        }
                    }
                }
                Mode::Docstring { index } => {
                    let delimiter = self.comments.docstring[index];
                    let kind = CommentKind::Docstring { index };
                    match find_close(bytes, pos, delimiter, true) {
                        Some(at) => {
                            out.comments.push(comment(kind, open.take(), pos..at, true));
                            pos = at + delimiter.len();
                            mode = Mode::Code;
                        }
                        None => {
                            out.comments
                                .push(comment(kind, open, pos..text.len(), false));
                            out.end = mode;
                            return out;
                        }
                    }
                }
                Mode::MultilineString { index } => {
                    let quote = self.strings.quotes[index];
                    match find_close(bytes, pos, quote.close, quote.escapes) {
                        Some(at) => {
                            pos = at + quote.close.len();
                            mode = Mode::Code;
                        }
                        None => {
                            out.end = mode;
                            return out;
                        }
                    }
                }
            }
        }
    }

    /// The next comment or string literal at or after `from`, in code.
    fn next_event(&self, text: &str, from: usize, out: &mut LexedLine) -> Option<(usize, Event)> {
        let bytes = text.as_bytes();
        let mut at = from;
        while at < bytes.len() {
            let byte = bytes[at];
            // Every delimiter starts with ASCII punctuation.
            if !byte.is_ascii_punctuation() {
                at += 1;
                continue;
            }
            let rest = &bytes[at..];
            for (index, block) in self.comments.block.iter().enumerate() {
                if rest.starts_with(block.open.as_bytes()) {
                    return Some((at, Event::Block(index)));
                }
                if rest.starts_with(block.close.as_bytes())
                    && !block.close.starts_with(']')
                    && text[at..].trim_end() == block.close
                {
                    out.stray_close = Some(index);
                }
            }
            for (index, delimiter) in self.comments.docstring.iter().enumerate() {
                if rest.starts_with(delimiter.as_bytes()) && is_statement_start(&text[..at]) {
                    return Some((at, Event::Docstring(index)));
                }
            }
            for (index, prefix) in self.comments.line.iter().enumerate() {
                if rest.starts_with(prefix.as_bytes())
                    && (!self.comments.line_needs_space
                        || at == 0
                        || bytes[at - 1].is_ascii_whitespace())
                {
                    return Some((at, Event::Line(index)));
                }
            }
            for (index, quote) in self.strings.quotes.iter().enumerate() {
                if !rest.starts_with(quote.open.as_bytes()) {
                    continue;
                }
                let body = at + quote.open.len();
                match find_close(bytes, body, quote.close, quote.escapes) {
                    Some(close) => return Some((at, Event::Literal(close + quote.close.len()))),
                    None if quote.multiline => return Some((at, Event::OpenString(index))),
                    // An unclosed one-line quote is an apostrophe or a typo: read on.
                    None => {}
                }
            }
            if byte == b'\'' && self.strings.char_literals {
                if let Some(end) = char_literal_end(text, at) {
                    return Some((at, Event::Literal(end)));
                }
            }
            at += 1;
        }
        None
    }
}

enum Event {
    Line(usize),
    Block(usize),
    Docstring(usize),
    /// A string literal that ends on this line, at the given offset.
    Literal(usize),
    /// A multi-line string literal that goes on past this line.
    OpenString(usize),
}

fn comment(kind: CommentKind, open: Option<usize>, body: Range<usize>, closed: bool) -> Comment {
    Comment {
        kind,
        open,
        body,
        closed,
    }
}

fn push_code(out: &mut LexedLine, text: &str, range: Range<usize>) {
    if range.is_empty() {
        return;
    }
    if !text[range.clone()].trim().is_empty() {
        out.has_code = true;
    }
    out.code.push(range);
}

/// Where the block comment `syntax`, open `depth` deep at `from`, closes; or how
/// deep it is still open at the end of the line.
fn find_block_close(
    bytes: &[u8],
    from: usize,
    syntax: BlockComment,
    mut depth: u32,
) -> Result<usize, u32> {
    let mut at = from;
    while at < bytes.len() {
        let rest = &bytes[at..];
        if rest.starts_with(syntax.close.as_bytes()) {
            depth -= 1;
            if depth == 0 {
                return Ok(at);
            }
            at += syntax.close.len();
        } else if syntax.nests && rest.starts_with(syntax.open.as_bytes()) {
            depth += 1;
            at += syntax.open.len();
        } else {
            at += 1;
        }
    }
    Err(depth)
}

/// Where `close` occurs at or after `from`, skipping escaped characters.
fn find_close(bytes: &[u8], from: usize, close: &str, escapes: bool) -> Option<usize> {
    let mut at = from;
    while at < bytes.len() {
        if escapes && bytes[at] == b'\\' {
            at += 2;
            continue;
        }
        if bytes[at..].starts_with(close.as_bytes()) {
            return Some(at);
        }
        at += 1;
    }
    None
}

/// A docstring stands alone: only indentation and string prefixes (`r`, `u`) before it.
fn is_statement_start(before: &str) -> bool {
    let before = before.trim_start();
    before.len() <= 2
        && before
            .chars()
            .all(|c| matches!(c, 'r' | 'R' | 'u' | 'U' | 'b' | 'B'))
}

/// The end of the character literal starting at `at` (`'a'`, `'\n'`, `'\u{1F600}'`),
/// or `None` for a lifetime or a prime (`'a`, `x'`).
fn char_literal_end(text: &str, at: usize) -> Option<usize> {
    let rest = &text[at + 1..];
    if let Some(escaped) = rest.strip_prefix('\\') {
        let close = escaped
            .char_indices()
            .skip(1)
            .take(10)
            .find(|&(_, c)| c == '\'')?
            .0;
        return Some(at + 2 + close + 1);
    }
    let c = rest.chars().next()?;
    rest[c.len_utf8()..]
        .starts_with('\'')
        .then(|| at + 1 + c.len_utf8() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Renders a lexed line: comments as `«body»` (with `…` where they go on past the
    /// line), strings and code as they are.
    fn render(language: Language, lines: &str) -> String {
        let lexer = Lexer::new(language);
        let mut mode = Mode::Code;
        let mut out = Vec::new();
        for line in lines.lines() {
            let lexed = lexer.line(line, mode);
            mode = lexed.end;
            let mut rendered = String::new();
            for comment in &lexed.comments {
                let tail = if comment.closed { "" } else { "…" };
                rendered.push_str(&format!("«{}»{tail}", &line[comment.body.clone()]));
            }
            let code: Vec<&str> = lexed
                .code
                .iter()
                .map(|range| line[range.clone()].trim())
                .collect();
            out.push(format!("{}{rendered}", code.join("|")).trim().to_string());
        }
        out.join("\n")
    }

    #[test]
    fn separates_comments_strings_and_code() {
        let cases: &[(Language, &str, &str)] = &[
            (Language::Rust, "let x = 1; // note", "let x = 1;« note»"),
            (
                Language::Rust,
                r#"let s = "// no"; // yes"#,
                "let s =|;« yes»",
            ),
            (
                Language::Rust,
                r#"let s = "a\"//"; // yes"#,
                "let s =|;« yes»",
            ),
            (
                Language::Rust,
                "fn f<'a>(x: &'a str) { '{' } // c",
                "fn f<'a>(x: &'a str) {|}« c»",
            ),
            (
                Language::Rust,
                "a /* b /* c */ d */ e",
                "a|e« b /* c */ d »",
            ),
            (Language::C, "a /* b /* c */ d */ e", "a|d */ e« b /* c »"),
            (Language::Python, "x = 'it''s' # c", "x =|« c»"),
            (Language::Python, "    \"\"\"Doc.\"\"\"", "«Doc.»"),
            (Language::Python, "x = \"\"\"not doc\"\"\"", "x ="),
            (Language::Shell, "echo $# ${#a} # c", "echo $# ${#a}« c»"),
            (Language::Yaml, "url: http://a#b # c", "url: http://a#b« c»"),
            (Language::Lua, "x = 1 --[[ c ]] -- d", "x = 1|« c »« d»"),
            (Language::Html, "<p><!-- c --></p>", "<p>|</p>« c »"),
            (Language::Sql, "select '--' -- c", "select|« c»"),
            (Language::Rust, "it's // c", "it's« c»"),
        ];
        let failures: Vec<String> = cases
            .iter()
            .filter(|&&(language, line, expected)| render(language, line) != expected)
            .map(|&(language, line, _)| {
                format!("{language:?} {line:?} => {:?}", render(language, line))
            })
            .collect();
        assert!(failures.is_empty(), "{failures:#?}");
    }

    #[test]
    fn carries_state_across_lines() {
        let cases: &[(Language, &str, &str)] = &[
            (Language::C, "a /* b\n c\n d */ e", "a« b»…\n« c»…\ne« d »"),
            (
                Language::Rust,
                "/* a /* b */\n c */ d",
                "« a /* b */»…\nd« c »",
            ),
            (
                Language::Python,
                "def f():\n    \"\"\"A\n    B\"\"\"\n    x",
                "def f():\n«A»…\n«    B»\nx",
            ),
            (Language::Python, "s = '''\n# no\n'''", "s =\n\n"),
            (Language::JavaScript, "s = `a\n// no\n` // c", "s =\n\n« c»"),
            (Language::Html, "<!--\nx\n-->y", "«»…\n«x»…\ny«»"),
        ];
        let failures: Vec<String> = cases
            .iter()
            .filter(|&&(language, text, expected)| render(language, text) != expected)
            .map(|&(language, text, _)| {
                format!("{language:?} {text:?} => {:?}", render(language, text))
            })
            .collect();
        assert!(failures.is_empty(), "{failures:#?}");
    }

    #[test]
    fn lex_corrects_a_start_inside_a_block_comment() {
        let mut text = String::from("/*\n");
        text.push_str(&" * \"TODO\"\n".repeat(LOOKBACK + 10));
        text.push_str(" */\nx // TODO\n");
        let line = LOOKBACK + 12;
        let lexed = lex(&text, line, line, Language::C);
        let (_, last) = lexed.get(line).unwrap();
        assert_eq!(last.start, Mode::Code);
        let (_, inside) = lexed.get(line - 2).unwrap();
        assert!(matches!(inside.start, Mode::Block { .. }), "{inside:?}");
    }

    #[test]
    fn lex_resyncs_python_at_a_def() {
        let mut text = String::from("\"\"\"\n");
        text.push_str(&"text\n".repeat(LOOKBACK + 10));
        text.push_str("\"\"\"\ndef f():\n    \"\"\"Doc.\n    TODO: x\n    \"\"\"\n");
        let line = LOOKBACK + 14;
        let lexed = lex(&text, line, line, Language::Python);
        let (line_text, lexed_line) = lexed.get(line).unwrap();
        assert_eq!(line_text, "    TODO: x");
        assert_eq!(lexed_line.start, Mode::Docstring { index: 0 });
    }
}
