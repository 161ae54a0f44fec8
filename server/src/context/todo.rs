//! Finds the TODO comment on a line: its marker, its text and the comment lines that
//! continue it.
//!
//! A marker counts only inside a comment (line comments, block comments, Python
//! docstrings), as a whole word: `"TODO"` in a string and `TODO_LIST` are not TODOs.
//! An uppercase marker counts at the start of a comment (`// TODO fix`); anywhere
//! else, or in another case, it needs a colon (`# note, todo: fix`).

use serde::{Deserialize, Serialize};

use super::language::Language;
use super::lexer::{lex, CommentKind, Lexed};
use super::lines::LineRange;

/// How many lines a TODO may run on past its marker line.
const MAX_CONTINUATION: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Marker {
    Todo,
    Fixme,
    Xxx,
    Hack,
}

impl Marker {
    const ALL: [Marker; 4] = [Marker::Todo, Marker::Fixme, Marker::Xxx, Marker::Hack];

    pub fn as_str(self) -> &'static str {
        match self {
            Marker::Todo => "TODO",
            Marker::Fixme => "FIXME",
            Marker::Xxx => "XXX",
            Marker::Hack => "HACK",
        }
    }

    fn parse(word: &str) -> Option<Marker> {
        Marker::ALL
            .into_iter()
            .find(|marker| word.eq_ignore_ascii_case(marker.as_str()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Todo {
    pub marker: Marker,
    /// `alice` in `TODO(alice): …`.
    pub author: Option<String>,
    /// The text after the marker on its line, without the `:`.
    pub text: String,
    /// The text of the comment lines that continue the TODO.
    pub continuation: Vec<String>,
    /// From the marker line to the last continuation line.
    pub lines: LineRange,
    /// Byte offset of the marker in its line.
    pub marker_column: usize,
}

impl Todo {
    /// The whole text of the TODO, one line per comment line.
    pub fn description(&self) -> String {
        let mut parts = Vec::with_capacity(1 + self.continuation.len());
        if !self.text.is_empty() {
            parts.push(self.text.as_str());
        }
        parts.extend(self.continuation.iter().map(String::as_str));
        parts.join("\n")
    }
}

/// The TODO whose comment covers `line`: on the marker line or on a line that
/// continues it.
///
/// Reads a bounded number of lines around `line`, whatever the size of `text`.
pub fn find_todo(text: &str, line: usize, language: Language) -> Option<Todo> {
    let first = line.saturating_sub(MAX_CONTINUATION);
    let lexed = lex(text, first, line.saturating_add(MAX_CONTINUATION), language);
    let (_, cursor) = lexed.get(line)?;
    if cursor.comments.is_empty() {
        return None;
    }
    for marker_line in (first..=line).rev() {
        let (_, lexed_line) = lexed.get(marker_line)?;
        if lexed_line.comments.is_empty() {
            return None;
        }
        if let Some(todo) = todo_at(&lexed, marker_line, language) {
            return todo.lines.contains(line).then_some(todo);
        }
    }
    None
}

fn todo_at(lexed: &Lexed<'_>, line: usize, language: Language) -> Option<Todo> {
    let (text, lexed_line) = lexed.get(line)?;
    lexed_line.comments.iter().find_map(|comment| {
        let body = &text[comment.body.clone()];
        let (marker, range) = find_marker(body)?;
        let (author, rest) = split_author(&body[range.end..]);
        let continuation = if comment.closed && !matches!(comment.kind, CommentKind::Line { .. }) {
            Vec::new()
        } else {
            continuation(lexed, line, comment.kind, comment.open, language)
        };
        Some(Todo {
            marker,
            author,
            text: rest
                .trim_start_matches([':', '-', ' ', '\t'])
                .trim_end()
                .to_string(),
            lines: LineRange::new(line, line + continuation.len()),
            continuation,
            marker_column: comment.body.start + range.start,
        })
    })
}

/// The marker in a comment's text, with its byte range.
fn find_marker(body: &str) -> Option<(Marker, std::ops::Range<usize>)> {
    let bytes = body.as_bytes();
    let is_word = |byte: u8| byte.is_ascii_alphanumeric() || byte == b'_' || byte >= 0x80;
    let mut leading = true;
    let mut at = 0;
    while at < bytes.len() {
        let byte = bytes[at];
        if !is_word(byte) {
            if matches!(byte, b'"' | b'\'' | b'`') {
                leading = false;
            }
            at += 1;
            continue;
        }
        let end = at + bytes[at..].iter().take_while(|&&b| is_word(b)).count();
        let word = &body[at..end];
        if let Some(marker) = Marker::parse(word) {
            let before = at.checked_sub(1).map(|i| bytes[i]);
            let quoted = matches!(before, Some(b'"' | b'\'' | b'`'));
            let tagged = matches!(before, Some(b'@' | b'\\'));
            let uppercase = word == marker.as_str();
            let counts = (leading && (uppercase || tagged)) || colon_follows(&body[end..]);
            if counts && !quoted {
                return Some((marker, at..end));
            }
        }
        leading = false;
        at = end;
    }
    None
}

/// Whether `: …` or `(name): …` follows a marker.
fn colon_follows(after: &str) -> bool {
    let (_, rest) = split_author(after);
    rest.trim_start().starts_with(':')
}

/// Splits `(name)` off the text after a marker.
fn split_author(after: &str) -> (Option<String>, &str) {
    let Some(inner) = after.strip_prefix('(') else {
        return (None, after);
    };
    match inner.find(')') {
        Some(close) if close <= 64 => {
            let author = inner[..close].trim();
            let author = (!author.is_empty()).then(|| author.to_string());
            (author, &inner[close + 1..])
        }
        _ => (None, after),
    }
}

/// The text of the lines after `line` that continue the TODO started there: more
/// line comments aligned with it, or the following lines of its block comment, up to
/// an empty line, a line with another marker, or the end of the comment.
fn continuation(
    lexed: &Lexed<'_>,
    line: usize,
    kind: CommentKind,
    open: Option<usize>,
    language: Language,
) -> Vec<String> {
    let syntax = language.comments();
    let mut out = Vec::new();
    for next in line + 1..=line + MAX_CONTINUATION {
        let Some((text, lexed_line)) = lexed.get(next) else {
            break;
        };
        let Some(comment) = lexed_line.comments.first() else {
            break;
        };
        let body = &text[comment.body.clone()];
        let body = match kind {
            CommentKind::Line { index } => {
                let aligned = comment.kind == kind && comment.open == open;
                let Some(column) = comment.open.filter(|_| aligned) else {
                    break;
                };
                if !text[..column].trim().is_empty() {
                    break;
                }
                // `///` and `//!` go on as `///` and `//!`.
                let repeated = syntax.line[index].chars().next().unwrap_or('/');
                body.trim_start_matches([repeated, '!']).trim()
            }
            CommentKind::Block { index } | CommentKind::Docstring { index } => {
                if comment.open.is_some() {
                    break;
                }
                let body = body.trim();
                let starred = matches!(kind, CommentKind::Block { .. })
                    && syntax.block[index].open.ends_with('*');
                match body.strip_prefix('*') {
                    Some(rest) if starred => rest.trim(),
                    _ => body,
                }
            }
        };
        // A Javadoc tag or a new marker starts something else.
        if body.is_empty() || body.starts_with('@') || find_marker(body).is_some() {
            break;
        }
        out.push(body.to_string());
        if comment.closed && !matches!(kind, CommentKind::Line { .. }) {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::fixture::cursor;

    /// Finds the TODO at the `$0` line and renders it as
    /// `MARKER(author) text | continuation… @first-last:column`, or `-` for none.
    fn check(language: Language, fixture: &str, expected: &str) {
        let (text, line) = cursor(fixture);
        let actual = render(find_todo(&text, line, language));
        assert_eq!(actual, expected, "{language:?}:\n{fixture}");
        // The same text with CRLF line ends finds the same TODO.
        let crlf = text.replace('\n', "\r\n");
        assert_eq!(
            render(find_todo(&crlf, line, language)),
            expected,
            "CRLF:\n{fixture}"
        );
    }

    fn render(todo: Option<Todo>) -> String {
        let Some(todo) = todo else {
            return "-".to_string();
        };
        let author = todo
            .author
            .map(|author| format!("({author})"))
            .unwrap_or_default();
        let mut out = format!("{}{author} {}", todo.marker.as_str(), todo.text);
        for line in &todo.continuation {
            out.push_str(&format!(" | {line}"));
        }
        let LineRange { first, last } = todo.lines;
        out.push_str(&format!(" @{first}-{last}:{}", todo.marker_column));
        out
    }

    #[test]
    fn finds_markers_in_line_comments() {
        let cases: &[(Language, &str, &str)] = &[
            (
                Language::Rust,
                "// TODO: handle the empty list$0",
                "TODO handle the empty list @0-0:3",
            ),
            (
                Language::Rust,
                "fn f() {\n    // FIXME: off by one$0\n}",
                "FIXME off by one @1-1:7",
            ),
            (
                Language::Rust,
                "/// TODO document the panics$0",
                "TODO document the panics @0-0:4",
            ),
            (
                Language::Rust,
                "//! XXX: crate docs$0",
                "XXX crate docs @0-0:4",
            ),
            (
                Language::Python,
                "# HACK - works around #12$0",
                "HACK works around #12 @0-0:2",
            ),
            (
                Language::Shell,
                "  # TODO(alice): quote paths$0",
                "TODO(alice) quote paths @0-0:4",
            ),
            (
                Language::Lua,
                "-- TODO: cache this$0",
                "TODO cache this @0-0:3",
            ),
            (
                Language::Sql,
                "select 1; -- FIXME: slow$0",
                "FIXME slow @0-0:13",
            ),
            (
                Language::Haskell,
                "-- TODO: strictness$0",
                "TODO strictness @0-0:3",
            ),
            (
                Language::Lisp,
                ";; TODO: tail call$0",
                "TODO tail call @0-0:3",
            ),
            (
                Language::Clojure,
                "; XXX: lazy seq$0",
                "XXX lazy seq @0-0:2",
            ),
            (Language::Toml, "x = 1 # TODO: bump$0", "TODO bump @0-0:8"),
            (Language::Yaml, "key: v # TODO: pin$0", "TODO pin @0-0:9"),
            (
                Language::Erlang,
                "% TODO: supervise$0",
                "TODO supervise @0-0:2",
            ),
            (
                Language::Unknown,
                "; TODO: anything$0",
                "TODO anything @0-0:2",
            ),
            (
                Language::Unknown,
                "-- TODO: anything$0",
                "TODO anything @0-0:3",
            ),
            (Language::Rust, "// TODO$0", "TODO  @0-0:3"),
            (
                Language::Rust,
                "// @todo lower tag$0",
                "TODO lower tag @0-0:4",
            ),
            (
                Language::Rust,
                "// todo: lower with colon$0",
                "TODO lower with colon @0-0:3",
            ),
            (
                Language::Rust,
                "// see above; TODO: later$0",
                "TODO later @0-0:14",
            ),
        ];
        for &(language, fixture, expected) in cases {
            check(language, fixture, expected);
        }
    }

    #[test]
    fn finds_markers_in_trailing_comments() {
        let cases: &[(Language, &str, &str)] = &[
            (Language::Python, "x = 1  # TODO: y$0", "TODO y @0-0:9"),
            (
                Language::Rust,
                "let s = \"//\"; // TODO: z$0",
                "TODO z @0-0:17",
            ),
            (
                Language::JavaScript,
                "f('#', \"x\") // FIXME: w$0",
                "FIXME w @0-0:15",
            ),
            (
                Language::C,
                "x = 1; /* TODO: inline */ y = 2;$0",
                "TODO inline @0-0:10",
            ),
        ];
        for &(language, fixture, expected) in cases {
            check(language, fixture, expected);
        }
    }

    #[test]
    fn finds_markers_in_block_comments_and_docstrings() {
        let cases: &[(Language, &str, &str)] = &[
            (
                Language::C,
                "/* TODO: free the buffer */$0",
                "TODO free the buffer @0-0:3",
            ),
            (
                Language::Java,
                "/**\n * Parses.\n * TODO: reject NaN$0\n */",
                "TODO reject NaN @2-2:3",
            ),
            (
                Language::Rust,
                "/*\n   HACK: until 1.80$0\n*/",
                "HACK until 1.80 @1-1:3",
            ),
            (
                Language::Css,
                "a { /* XXX: vendor prefix */ }$0",
                "XXX vendor prefix @0-0:7",
            ),
            (
                Language::Html,
                "<!-- TODO: alt text -->$0",
                "TODO alt text @0-0:5",
            ),
            (
                Language::Markdown,
                "<!--\nTODO: add a section$0\n-->",
                "TODO add a section @1-1:0",
            ),
            (
                Language::Xml,
                "<a/> <!-- FIXME: schema --> <b/>$0",
                "FIXME schema @0-0:10",
            ),
            (
                Language::Haskell,
                "{- TODO: total -}$0",
                "TODO total @0-0:3",
            ),
            (
                Language::Lua,
                "--[[\nTODO: metatables$0\n]]",
                "TODO metatables @1-1:0",
            ),
            (
                Language::Python,
                "def f():\n    \"\"\"TODO: document.\"\"\"$0",
                "TODO document. @1-1:7",
            ),
            (
                Language::Python,
                "def f():\n    \"\"\"Sums.\n\n    TODO: handle None$0\n    \"\"\"",
                "TODO handle None @3-3:4",
            ),
            (
                Language::Python,
                "class A:\n    '''\n    FIXME: slots$0\n    '''",
                "FIXME slots @2-2:4",
            ),
        ];
        for &(language, fixture, expected) in cases {
            check(language, fixture, expected);
        }
    }

    #[test]
    fn collects_continuation_lines() {
        let cases: &[(Language, &str, &str)] = &[
            (
                Language::Rust,
                "// TODO: handle the empty list$0\n//       and a single item\nfn f() {}",
                "TODO handle the empty list | and a single item @0-1:3",
            ),
            (
                Language::Python,
                "# TODO: one$0\n# two\n#\n# unrelated",
                "TODO one | two @0-1:2",
            ),
            (
                Language::Rust,
                "// TODO: one$0\n// FIXME: another\n",
                "TODO one @0-0:3",
            ),
            (
                Language::Python,
                "x = 1  # TODO: one$0\n       # two\n# not aligned",
                "TODO one | two @0-1:9",
            ),
            (
                Language::Rust,
                "    // TODO: one$0\n// outdented is not part of it",
                "TODO one @0-0:7",
            ),
            (
                Language::Java,
                "/*\n * TODO: one$0\n * two\n * @param x\n */",
                "TODO one | two @1-2:3",
            ),
            (
                Language::C,
                "/* TODO: one$0\n   two */ int x;",
                "TODO one | two @0-1:3",
            ),
            (
                Language::Python,
                "    \"\"\"\n    TODO: one$0\n    two\n    \"\"\"",
                "TODO one | two @1-2:4",
            ),
            (
                Language::Html,
                "<!-- TODO: one$0\n     two -->",
                "TODO one | two @0-1:5",
            ),
            // The cursor may sit on a continuation line.
            (
                Language::Rust,
                "// TODO: one\n// two$0\n",
                "TODO one | two @0-1:3",
            ),
            (
                Language::Java,
                "/* TODO: one\n * two$0\n */",
                "TODO one | two @0-1:3",
            ),
            (Language::Rust, "// TODO: one\n//\n// three$0", "-"),
        ];
        for &(language, fixture, expected) in cases {
            check(language, fixture, expected);
        }
    }

    #[test]
    fn ignores_markers_outside_comments() {
        let cases: &[(Language, &str)] = &[
            (Language::Rust, "let s = \"TODO: not a comment\";$0"),
            (Language::Rust, "let s = \"// TODO: in a string\";$0"),
            (Language::Python, "s = '# TODO: in a string'$0"),
            (
                Language::Python,
                "x = \"\"\"\nTODO: a string, not a docstring$0\n\"\"\"",
            ),
            (
                Language::JavaScript,
                "const s = `\n// TODO: in a template$0\n`;",
            ),
            (Language::Rust, "const TODO_LIST: u8 = 0;$0"),
            (Language::Rust, "let todos = TODO;$0"),
            (Language::Rust, "// TODO_LIST is a constant$0"),
            (Language::Rust, "// the todos are listed here$0"),
            (Language::Rust, "// see the TODO above$0"),
            (Language::Rust, "// a \"TODO: quoted\" marker$0"),
            (Language::Rust, "// Todo lists are nice$0"),
            (Language::Shell, "echo $#TODO$0"),
            (Language::C, "/* done */ TODO();$0"),
            (Language::Rust, "fn f() {}$0\n// TODO: next line"),
            (Language::Rust, "// TODO: far\n//\n//\n// x$0"),
        ];
        for &(language, fixture) in cases {
            check(language, fixture, "-");
        }
    }

    #[test]
    fn finds_a_todo_deep_in_a_large_file() {
        // About 10 MB; the release build answers in about a millisecond.
        let mut text = "fn f() { let s = \"x\"; } // filler\n".repeat(300_000);
        text.push_str("// TODO: at the end\n");
        let todo = find_todo(&text, 300_000, Language::Rust);
        assert_eq!(todo.map(|todo| todo.text), Some("at the end".to_string()));
        assert!(find_todo(&text, 299_990, Language::Rust).is_none());
        assert!(find_todo(&text, 400_000, Language::Rust).is_none());
        assert!(find_todo(&text, usize::MAX, Language::Rust).is_none());
    }

    #[test]
    fn description_joins_the_lines() {
        let todo = find_todo("// TODO:\n// first\n// second", 0, Language::Rust);
        assert_eq!(
            todo.map(|todo| todo.description()),
            Some("first\nsecond".to_string())
        );
    }
}
