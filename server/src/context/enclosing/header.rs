//! What kind of block a header line opens: a function (the context we want), a
//! container such as a class or an impl (usually too broad), or anything else.
//!
//! Keywords decide where a language has them (`fn`, `def`, `function`, `class`);
//! C-like methods without a keyword are recognized by their shape: a name and a
//! parameter list, not called on an object nor assigned.

use super::{code_text, BlockKind};
use crate::context::lexer::Lexed;

const MODIFIERS: &[&str] = &[
    "pub",
    "crate",
    "super",
    "export",
    "default",
    "async",
    "static",
    "public",
    "private",
    "protected",
    "internal",
    "abstract",
    "final",
    "sealed",
    "override",
    "virtual",
    "inline",
    "unsafe",
    "open",
    "data",
    "local",
    "const",
    "let",
    "var",
];

const CONTAINERS: &[&str] = &[
    "impl",
    "mod",
    "trait",
    "class",
    "struct",
    "enum",
    "interface",
    "namespace",
    "module",
    "object",
    "extern",
    "union",
    "extension",
    "protocol",
    "record",
    "defmodule",
];

const FUNCTIONS: &[&str] = &[
    "fn",
    "function",
    "func",
    "def",
    "defp",
    "defun",
    "defn",
    "defmacro",
    "define",
    "fun",
    "sub",
    "proc",
    "lambda",
    "macro_rules",
];

const CONTROL: &[&str] = &[
    "if",
    "else",
    "elif",
    "for",
    "while",
    "loop",
    "match",
    "switch",
    "do",
    "try",
    "catch",
    "finally",
    "return",
    "with",
    "when",
    "case",
    "select",
    "foreach",
    "using",
    "lock",
    "synchronized",
    "new",
    "unless",
    "until",
];

/// What kind of block the header on lines `first..=last` opens.
pub(super) fn classify(lexed: &Lexed<'_>, first: usize, last: usize) -> BlockKind {
    let header: Vec<String> = (first..=last)
        .filter_map(|line| {
            lexed
                .get(line)
                .map(|(text, lexed_line)| code_text(text, lexed_line))
        })
        .collect();
    kind_of(&header.join(" "))
}

fn kind_of(header: &str) -> BlockKind {
    let words: Vec<&str> = header
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .filter(|word| !word.is_empty())
        .collect();
    let leading = words
        .iter()
        .copied()
        .find(|word| !MODIFIERS.contains(word))
        .unwrap_or("");
    if CONTAINERS.contains(&leading) {
        return BlockKind::Container;
    }
    if words.iter().any(|word| FUNCTIONS.contains(word)) {
        return BlockKind::Function;
    }
    if CONTROL.contains(&leading) {
        return BlockKind::Other;
    }
    let declared = matches!(
        words.first().copied(),
        Some("const" | "let" | "var" | "export")
    );
    if declared && header.contains("=>") {
        return BlockKind::Function;
    }
    if looks_like_signature(header) {
        return BlockKind::Function;
    }
    BlockKind::Other
}

/// `int main(void) {`, `public void run() throws X {`, `render() {`: a name, a
/// parameter list, and neither an assignment nor a call on an object before it.
fn looks_like_signature(header: &str) -> bool {
    let signature = header.trim_end().trim_end_matches(['{', ':']).trim_end();
    let (Some(open), Some(close)) = (signature.find('('), signature.rfind(')')) else {
        return false;
    };
    let before = signature[..open].trim_end();
    let name_start = before
        .char_indices()
        .rev()
        .find(|&(_, c)| !is_name_char(c))
        .map_or(0, |(i, c)| i + c.len_utf8());
    let name = &before[name_start..];
    let called_on_object = before[..name_start]
        .trim_end()
        .ends_with(['.', '=', '(', ',']);
    !name.is_empty() && !called_on_object && close > open && !signature.ends_with("=>")
}

pub(super) fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_headers() {
        let cases: &[(&str, BlockKind)] = &[
            (
                "pub(crate) async fn run(&self) -> Result<()> {",
                BlockKind::Function,
            ),
            ("impl<T> Display for Wrapper<T> {", BlockKind::Container),
            ("pub struct Config {", BlockKind::Container),
            ("mod tests {", BlockKind::Container),
            ("if let Some(x) = y {", BlockKind::Other),
            ("} else if (a) {", BlockKind::Other),
            ("for (int i = 0; i < n; i++) {", BlockKind::Other),
            (
                "static int main(int argc, char **argv) {",
                BlockKind::Function,
            ),
            (
                "public void run() throws IOException {",
                BlockKind::Function,
            ),
            ("render() {", BlockKind::Function),
            (
                "export default class App extends Component {",
                BlockKind::Container,
            ),
            ("const f = async (x) => {", BlockKind::Function),
            ("xs.forEach((x) => {", BlockKind::Other),
            ("describe(\"parser\", () => {", BlockKind::Other),
            ("items.map(function (x) {", BlockKind::Function),
            ("new Thread() {", BlockKind::Other),
            ("def f(self):", BlockKind::Function),
            ("async def f():", BlockKind::Function),
            ("class A(B):", BlockKind::Container),
            ("local function f()", BlockKind::Function),
            ("(defn f [x]", BlockKind::Function),
            ("(let [y 1]", BlockKind::Other),
            ("jobs:", BlockKind::Other),
            ("let handler = move |req| {", BlockKind::Other),
        ];
        for &(header, expected) in cases {
            assert_eq!(kind_of(header), expected, "{header}");
        }
    }
}
