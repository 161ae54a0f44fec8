//! Guesses the function or block around some lines, so that an agent sees the code
//! a TODO or a selection belongs to.
//!
//! This is a heuristic, not a parser: brackets are matched outside comments and
//! strings (C-like and Lisp-like languages), or blocks are read from indentation
//! (Python, YAML, and `end`-terminated languages, whose code is indented in
//! practice). From the innermost block outwards it picks the first function, stops
//! before a class or module (unless that is the innermost block), and never returns
//! more than [`MAX_BLOCK_LINES`] lines: callers fall back to surrounding lines.

mod brackets;
mod header;
mod indentation;

use serde::{Deserialize, Serialize};

use super::language::{BlockStyle, Language};
use super::lexer::{lex, Lexed, LexedLine};
use super::lines::LineRange;

/// The largest block worth showing whole.
pub const MAX_BLOCK_LINES: usize = 200;
/// Lines shown on each side when there is no block to show.
pub const SURROUNDING_LINES: usize = 20;
/// How far a signature or a run of doc comments may reach above a block's bracket.
const MAX_HEADER_LINES: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContextKind {
    EnclosingBlock,
    SurroundingLines,
}

/// Code around a TODO or a selection, as shown to the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeContext {
    pub kind: ContextKind,
    pub lines: LineRange,
    /// The lines, joined with `\n`.
    pub text: String,
}

/// The enclosing block of `lines`, or the lines around them when there is none of a
/// reasonable size.
pub fn code_context(text: &str, lines: LineRange, language: Language) -> CodeContext {
    let lexed = lex_around(text, lines, language);
    let window = lexed.window();
    let (kind, range) = match enclosing_in(&lexed, lines, language) {
        Some(block) => (ContextKind::EnclosingBlock, block),
        None => (
            ContextKind::SurroundingLines,
            window.surrounding(lines, SURROUNDING_LINES),
        ),
    };
    CodeContext {
        kind,
        lines: range,
        text: window.excerpt(range),
    }
}

/// The function or block around `line`, at most [`MAX_BLOCK_LINES`] long.
pub fn enclosing_block(text: &str, line: usize, language: Language) -> Option<LineRange> {
    enclosing_block_of(text, LineRange::line(line), language)
}

/// The function or block that holds all of `lines`, at most [`MAX_BLOCK_LINES`] long.
pub fn enclosing_block_of(text: &str, lines: LineRange, language: Language) -> Option<LineRange> {
    enclosing_in(&lex_around(text, lines, language), lines, language)
}

/// Lexes enough lines around `lines` to find any block of a size worth showing, and
/// the surrounding lines.
fn lex_around<'a>(text: &'a str, lines: LineRange, language: Language) -> Lexed<'a> {
    let below = (MAX_BLOCK_LINES + 1).max(SURROUNDING_LINES);
    lex(
        text,
        lines.first.saturating_sub(MAX_BLOCK_LINES),
        lines.last.saturating_add(below),
        language,
    )
}

fn enclosing_in(lexed: &Lexed<'_>, lines: LineRange, language: Language) -> Option<LineRange> {
    lexed.get(lines.first)?;
    let lines = LineRange::new(lines.first, lines.last.min(lexed.end() - 1));
    let blocks = match language.block_style() {
        BlockStyle::Braces => brackets::bracket_blocks(lexed, lines, b'{', b'}'),
        BlockStyle::Parens => brackets::bracket_blocks(lexed, lines, b'(', b')'),
        BlockStyle::Indentation => indentation::indented_blocks(lexed, lines),
        BlockStyle::None => return None,
    };
    choose(&blocks, lines)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockKind {
    Function,
    /// A class, module or impl: usually too broad to be the context of a TODO.
    Container,
    Other,
}

#[derive(Debug, Clone, Copy)]
struct Block {
    lines: LineRange,
    kind: BlockKind,
}

/// Picks among blocks ordered from the innermost outwards.
fn choose(blocks: &[Block], target: LineRange) -> Option<LineRange> {
    let mut chosen = None;
    for block in blocks
        .iter()
        .filter(|block| block.lines.contains_range(target))
    {
        if block.lines.line_count() > MAX_BLOCK_LINES {
            break;
        }
        if block.kind == BlockKind::Container && chosen.is_some() {
            break;
        }
        chosen = Some(block.lines);
        if block.kind == BlockKind::Function {
            break;
        }
    }
    chosen
}

/// The bytes of a line's code, outside comments and strings.
fn code_bytes<'t>(
    text: &'t str,
    lexed_line: &'t LexedLine,
) -> impl DoubleEndedIterator<Item = u8> + 't {
    lexed_line
        .code
        .iter()
        .flat_map(move |range| text.as_bytes()[range.clone()].iter().copied())
}

fn net_opens(text: &str, lexed_line: &LexedLine, open: u8, close: u8) -> isize {
    code_bytes(text, lexed_line)
        .map(|byte| isize::from(byte == open) - isize::from(byte == close))
        .sum()
}

fn code_text(text: &str, lexed_line: &LexedLine) -> String {
    let parts: Vec<&str> = lexed_line
        .code
        .iter()
        .map(|range| &text[range.clone()])
        .collect();
    parts.join(" ").trim().to_string()
}

/// When `target` ends in a comment directly above a line that `is_definition`
/// accepts, that line.
fn definition_below(
    lexed: &Lexed<'_>,
    target: LineRange,
    is_definition: impl Fn(&str, &LexedLine) -> bool,
) -> Option<usize> {
    let (_, last) = lexed.get(target.last)?;
    if !last.is_comment_only() {
        return None;
    }
    for line in target.last + 1..=target.last + MAX_HEADER_LINES {
        let (text, lexed_line) = lexed.get(line)?;
        if lexed_line.is_comment_only() {
            continue;
        }
        return (lexed_line.has_code && is_definition(text, lexed_line)).then_some(line);
    }
    None
}

/// Doc comments, attributes and decorators belong to what they precede.
fn with_leading_comments(lexed: &Lexed<'_>, line: usize) -> usize {
    let mut first = line;
    for _ in 0..MAX_HEADER_LINES {
        let Some(previous) = first.checked_sub(1) else {
            break;
        };
        let Some((text, lexed_line)) = lexed.get(previous) else {
            break;
        };
        let code = code_text(text, lexed_line);
        let attribute = code.starts_with("#[") || code.starts_with('@');
        if !(lexed_line.is_comment_only() || attribute) {
            break;
        }
        first = previous;
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::fixture::selection;
    use crate::context::lines::excerpt;

    /// The block around the `$0` line (or between two `$0` lines), as its text, or
    /// `-` for none.
    fn check(language: Language, fixture: &str, expected: &str) {
        let (text, lines) = selection(fixture);
        let actual = enclosing_block_of(&text, lines, language)
            .map_or_else(|| "-".to_string(), |block| excerpt(&text, block));
        assert_eq!(actual, expected, "{language:?}:\n{fixture}");
        let crlf = text.replace('\n', "\r\n");
        let actual = enclosing_block_of(&crlf, lines, language)
            .map_or_else(|| "-".to_string(), |block| excerpt(&crlf, block));
        assert_eq!(actual, expected, "CRLF {language:?}:\n{fixture}");
    }

    #[test]
    fn finds_functions_in_rust() {
        check(
            Language::Rust,
            r#"
use std::fmt;

impl Foo {
    /// Sums.
    fn sum(&self) -> u32 {
        if self.xs.is_empty() {
            // TODO: handle the empty list$0
        }
        let s = "}";
        self.xs.iter().sum()
    }

    fn other() {}
}
"#,
            r#"    /// Sums.
    fn sum(&self) -> u32 {
        if self.xs.is_empty() {
            // TODO: handle the empty list
        }
        let s = "}";
        self.xs.iter().sum()
    }"#,
        );
        check(
            Language::Rust,
            "fn f<T>(\n    x: T,\n) -> u32\nwhere\n    T: Clone,\n{\n    0$0\n}\nfn g() {}",
            "fn f<T>(\n    x: T,\n) -> u32\nwhere\n    T: Clone,\n{\n    0\n}",
        );
        // A comment right above a definition is about that definition.
        check(
            Language::Rust,
            "mod m {\n    // TODO: faster$0\n    fn slow() {\n        x();\n    }\n}",
            "    // TODO: faster\n    fn slow() {\n        x();\n    }",
        );
        // Inside an impl but not in a method, the impl is the context.
        check(
            Language::Rust,
            "impl A {\n    // TODO: more$0\n\n    fn f() {}\n}",
            "impl A {\n    // TODO: more\n\n    fn f() {}\n}",
        );
        check(
            Language::Rust,
            "struct S {\n    a: u8, // TODO: u16$0\n}",
            "struct S {\n    a: u8, // TODO: u16\n}",
        );
        check(
            Language::Rust,
            "use a;\n// TODO: top level$0\n\nfn f() {}",
            "-",
        );
    }

    #[test]
    fn finds_functions_in_c_like_languages() {
        let cases: &[(Language, &str, &str)] = &[
            (
                Language::JavaScript,
                "function f(xs) {\n  xs.forEach((x) => {\n    use(x); // TODO$0\n  });\n}\n",
                "function f(xs) {\n  xs.forEach((x) => {\n    use(x); // TODO\n  });\n}",
            ),
            (
                Language::JavaScript,
                "class A {\n  render() {\n    if (a) {\n      b();$0\n    }\n  }\n}",
                "  render() {\n    if (a) {\n      b();\n    }\n  }",
            ),
            (
                Language::TypeScript,
                "export const f = async (x: number) => {\n  return x;$0\n};",
                "export const f = async (x: number) => {\n  return x;\n};",
            ),
            (
                Language::C,
                "int\nmain(void)\n{\n  /* TODO: args */$0\n  return 0;\n}",
                "int\nmain(void)\n{\n  /* TODO: args */\n  return 0;\n}",
            ),
            (
                Language::Java,
                "class A {\n  @Override\n  public void run() throws E {\n    x(\"{\");$0\n  }\n}",
                "  @Override\n  public void run() throws E {\n    x(\"{\");\n  }",
            ),
            (
                Language::Go,
                "func f() {\n\tfor {\n\t\tx()$0\n\t}\n}",
                "func f() {\n\tfor {\n\t\tx()\n\t}\n}",
            ),
            (
                Language::Css,
                "a {\n  color: red;$0\n}",
                "a {\n  color: red;\n}",
            ),
        ];
        for &(language, fixture, expected) in cases {
            check(language, fixture, expected);
        }
    }

    #[test]
    fn finds_blocks_by_indentation() {
        let cases: &[(Language, &str, &str)] = &[
            (
                Language::Python,
                "import os\n\nclass A:\n    @property\n    def f(self):\n        \"\"\"Doc.\n\nmore\"\"\"\n        if x:\n            # TODO: y$0\n            pass\n\n        return 1\n\n    def g(self):\n        pass\n",
                "    @property\n    def f(self):\n        \"\"\"Doc.\n\nmore\"\"\"\n        if x:\n            # TODO: y\n            pass\n\n        return 1",
            ),
            (
                Language::Python,
                "def f(\n    a,\n    b,\n) -> int:\n    return a$0\n",
                "def f(\n    a,\n    b,\n) -> int:\n    return a",
            ),
            (
                Language::Python,
                "# TODO: speed up$0\ndef slow():\n    pass\n\nx = 1",
                "# TODO: speed up\ndef slow():\n    pass",
            ),
            (Language::Python, "x = 1$0\ny = 2", "-"),
            (
                Language::Yaml,
                "jobs:\n  test:\n    steps:\n      - run: x # TODO: cache$0\nother: 1",
                "jobs:\n  test:\n    steps:\n      - run: x # TODO: cache",
            ),
            (
                Language::Ruby,
                "class A\n  def f\n    x # TODO$0\n  end\n\n  def g\n  end\nend",
                "  def f\n    x # TODO\n  end",
            ),
            (
                Language::Lua,
                "local function f()\n  -- TODO: x$0\n  return 1\nend\n",
                "local function f()\n  -- TODO: x\n  return 1\nend",
            ),
        ];
        for &(language, fixture, expected) in cases {
            check(language, fixture, expected);
        }
    }

    #[test]
    fn finds_forms_in_lisp() {
        check(
            Language::Clojure,
            "(ns a)\n\n(defn f [x]\n  (let [y 1]\n    ;; TODO: z$0\n    (+ x y)))\n",
            "(defn f [x]\n  (let [y 1]\n    ;; TODO: z\n    (+ x y)))",
        );
    }

    #[test]
    fn blocks_hold_whole_selections() {
        check(
            Language::Rust,
            "fn f() {\n    a();$0\n    if b {\n        c();$0\n    }\n}",
            "fn f() {\n    a();\n    if b {\n        c();\n    }\n}",
        );
    }

    #[test]
    fn gives_up_on_huge_blocks() {
        let body = "    x();\n".repeat(MAX_BLOCK_LINES + 5);
        let text = format!("fn f() {{\n{body}    y();\n{body}}}\n");
        let line = MAX_BLOCK_LINES + 6;
        assert_eq!(enclosing_block(&text, line, Language::Rust), None);
        let context = code_context(&text, LineRange::line(line), Language::Rust);
        assert_eq!(context.kind, ContextKind::SurroundingLines);
        assert_eq!(
            context.lines,
            LineRange::new(line - SURROUNDING_LINES, line + SURROUNDING_LINES)
        );
        assert_eq!(context.text.lines().count(), 2 * SURROUNDING_LINES + 1);

        let python = format!("def f():\n{body}    y()\n{body}");
        assert_eq!(enclosing_block(&python, line, Language::Python), None);
    }

    #[test]
    fn survives_lines_past_the_end() {
        let text = "fn f() {\n    x();\n}\n";
        for &language in Language::ALL {
            assert_eq!(enclosing_block(text, 99, language), None);
            enclosing_block_of(text, LineRange::new(1, usize::MAX), language);
            let context = code_context(text, LineRange::new(1, usize::MAX), language);
            assert_eq!(context.lines.first, context.lines.first.min(1));
        }
    }

    #[test]
    fn context_prefers_the_enclosing_block() {
        let context = code_context(
            "a\nfn f() {\n    x();\n}\nb",
            LineRange::line(2),
            Language::Rust,
        );
        assert_eq!(context.kind, ContextKind::EnclosingBlock);
        assert_eq!(context.lines, LineRange::new(1, 3));
        assert_eq!(context.text, "fn f() {\n    x();\n}");
    }
}
