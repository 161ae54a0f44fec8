//! Which language a file is written in, and how that language writes comments,
//! string literals and blocks.
//!
//! The tables are deliberately shallow: they describe what the TODO finder and the
//! enclosing-block heuristic need, not a grammar. A language we do not know gets
//! [`Language::Unknown`], whose tables accept every common comment syntax, because
//! finding a TODO in an odd file is worth more than a rare false positive.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Rust,
    Python,
    JavaScript,
    TypeScript,
    Go,
    C,
    Cpp,
    CSharp,
    Java,
    Kotlin,
    Scala,
    Swift,
    Dart,
    Php,
    Zig,
    Lua,
    Sql,
    Haskell,
    OCaml,
    Lisp,
    Clojure,
    Scheme,
    Shell,
    Ruby,
    Perl,
    R,
    Elixir,
    Erlang,
    Nix,
    Toml,
    Yaml,
    Json,
    Html,
    Xml,
    Vue,
    Markdown,
    Css,
    Scss,
    Dockerfile,
    Makefile,
    CMake,
    Terraform,
    Protobuf,
    GraphQl,
    Latex,
    Ini,
    Unknown,
}

/// How a language writes comments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommentSyntax {
    /// Prefixes of comments that run to the end of the line: `//`, `#`, `--`, `;`.
    pub line: &'static [&'static str],
    pub block: &'static [BlockComment],
    /// Delimiters of string literals that count as comments when they stand alone as
    /// a statement, like Python docstrings.
    pub docstring: &'static [&'static str],
    /// Whether a line comment must start a word: in shell and YAML, `$#` and `a#b`
    /// are not comments.
    pub line_needs_space: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockComment {
    pub open: &'static str,
    pub close: &'static str,
    /// Rust, Haskell, Swift and a few others let block comments nest.
    pub nests: bool,
}

/// A string literal form, so that comment markers inside strings are not taken for
/// comments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Quote {
    pub(crate) open: &'static str,
    pub(crate) close: &'static str,
    /// Literals like Python's `"""` or JavaScript's template strings may span lines;
    /// the others are taken to end on their line, and an unclosed one is taken for
    /// plain text (an apostrophe in prose, a lifetime).
    pub(crate) multiline: bool,
    pub(crate) escapes: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StringSyntax {
    pub(crate) quotes: &'static [Quote],
    /// `'x'` is a character literal, but a lone `'` is a lifetime or a prime (Rust,
    /// C-like languages, Haskell), so `'` is only a quote when it closes right away.
    pub(crate) char_literals: bool,
}

/// How the enclosing-block heuristic finds blocks in a language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BlockStyle {
    /// `{ … }`, C-like.
    Braces,
    /// `( … )`, Lisp-like.
    Parens,
    /// Blocks are indented under a header line (Python, YAML); also the best guess for
    /// `end`-terminated languages, whose code is indented in practice.
    Indentation,
    /// No useful notion of a block (SQL, Markdown, TOML).
    None,
}

const fn block(open: &'static str, close: &'static str, nests: bool) -> BlockComment {
    BlockComment { open, close, nests }
}

const fn quote(open: &'static str, close: &'static str, multiline: bool, escapes: bool) -> Quote {
    Quote {
        open,
        close,
        multiline,
        escapes,
    }
}

const C_BLOCK: &[BlockComment] = &[block("/*", "*/", false)];
const NESTED_C_BLOCK: &[BlockComment] = &[block("/*", "*/", true)];
const HTML_BLOCK: &[BlockComment] = &[block("<!--", "-->", false)];
const CMAKE_BLOCK: &[BlockComment] = &[block("#[[", "]]", false)];
const LUA_BLOCK: &[BlockComment] = &[block("--[[", "]]", false), block("--[=[", "]=]", false)];
const HASKELL_BLOCK: &[BlockComment] = &[block("{-", "-}", true)];
const OCAML_BLOCK: &[BlockComment] = &[block("(*", "*)", true)];
const LISP_BLOCK: &[BlockComment] = &[block("#|", "|#", true)];
const HTML_AND_C_BLOCK: &[BlockComment] = &[block("<!--", "-->", false), block("/*", "*/", false)];

const DQ: Quote = quote("\"", "\"", false, true);
const SQ: Quote = quote("'", "'", false, true);
const SQ_RAW: Quote = quote("'", "'", false, false);
const DQ_TRIPLE: Quote = quote("\"\"\"", "\"\"\"", true, true);
const SQ_TRIPLE: Quote = quote("'''", "'''", true, true);
const TEMPLATE: Quote = quote("`", "`", true, true);
const BACKTICK_RAW: Quote = quote("`", "`", true, false);
const LUA_LONG: Quote = quote("[[", "]]", true, false);

impl Language {
    pub const ALL: &'static [Language] = &[
        Language::Rust,
        Language::Python,
        Language::JavaScript,
        Language::TypeScript,
        Language::Go,
        Language::C,
        Language::Cpp,
        Language::CSharp,
        Language::Java,
        Language::Kotlin,
        Language::Scala,
        Language::Swift,
        Language::Dart,
        Language::Php,
        Language::Zig,
        Language::Lua,
        Language::Sql,
        Language::Haskell,
        Language::OCaml,
        Language::Lisp,
        Language::Clojure,
        Language::Scheme,
        Language::Shell,
        Language::Ruby,
        Language::Perl,
        Language::R,
        Language::Elixir,
        Language::Erlang,
        Language::Nix,
        Language::Toml,
        Language::Yaml,
        Language::Json,
        Language::Html,
        Language::Xml,
        Language::Vue,
        Language::Markdown,
        Language::Css,
        Language::Scss,
        Language::Dockerfile,
        Language::Makefile,
        Language::CMake,
        Language::Terraform,
        Language::Protobuf,
        Language::GraphQl,
        Language::Latex,
        Language::Ini,
        Language::Unknown,
    ];

    /// The language of a document: the client's `languageId` when we know it, the
    /// file name otherwise.
    pub fn detect(lsp_language_id: Option<&str>, path: &str) -> Language {
        lsp_language_id
            .and_then(Language::from_lsp_id)
            .unwrap_or_else(|| Language::from_path(path))
    }

    /// Maps an LSP `languageId` (VS Code's and Neovim's filetype names) to a language.
    pub fn from_lsp_id(id: &str) -> Option<Language> {
        let language = match id.to_ascii_lowercase().as_str() {
            "rust" => Language::Rust,
            "python" => Language::Python,
            "javascript" | "javascriptreact" | "jsx" => Language::JavaScript,
            "typescript" | "typescriptreact" | "tsx" => Language::TypeScript,
            "go" => Language::Go,
            "c" | "objective-c" | "objc" => Language::C,
            "cpp" | "c++" | "objective-cpp" | "objcpp" | "cuda" | "cuda-cpp" => Language::Cpp,
            "csharp" | "cs" => Language::CSharp,
            "java" => Language::Java,
            "kotlin" => Language::Kotlin,
            "scala" => Language::Scala,
            "swift" => Language::Swift,
            "dart" => Language::Dart,
            "php" => Language::Php,
            "zig" => Language::Zig,
            "lua" => Language::Lua,
            "sql" | "mysql" | "pgsql" | "plsql" => Language::Sql,
            "haskell" => Language::Haskell,
            "ocaml" => Language::OCaml,
            "lisp" | "commonlisp" | "elisp" | "emacs-lisp" => Language::Lisp,
            "clojure" => Language::Clojure,
            "scheme" | "racket" => Language::Scheme,
            "shell" | "shellscript" | "sh" | "bash" | "zsh" | "ksh" | "fish" => Language::Shell,
            "ruby" => Language::Ruby,
            "perl" => Language::Perl,
            "r" => Language::R,
            "elixir" => Language::Elixir,
            "erlang" => Language::Erlang,
            "nix" => Language::Nix,
            "toml" => Language::Toml,
            "yaml" => Language::Yaml,
            "json" | "jsonc" | "json5" => Language::Json,
            "html" => Language::Html,
            "xml" | "xsl" | "svg" => Language::Xml,
            "vue" | "svelte" => Language::Vue,
            "markdown" => Language::Markdown,
            "css" => Language::Css,
            "scss" | "less" => Language::Scss,
            "dockerfile" => Language::Dockerfile,
            "makefile" | "make" => Language::Makefile,
            "cmake" => Language::CMake,
            "terraform" | "hcl" => Language::Terraform,
            "proto" | "proto3" | "protobuf" => Language::Protobuf,
            "graphql" => Language::GraphQl,
            "latex" | "tex" | "bibtex" | "plaintex" => Language::Latex,
            "ini" | "dosini" | "properties" | "editorconfig" => Language::Ini,
            _ => return None,
        };
        Some(language)
    }

    /// Guesses the language from a file name; accepts `/` and `\` separators.
    pub fn from_path(path: &str) -> Language {
        let name = path
            .rsplit(['/', '\\'])
            .next()
            .unwrap_or(path)
            .to_ascii_lowercase();
        match name.as_str() {
            "makefile" | "gnumakefile" => return Language::Makefile,
            "dockerfile" | "containerfile" => return Language::Dockerfile,
            "cmakelists.txt" => return Language::CMake,
            "gemfile" | "rakefile" | "podfile" | "vagrantfile" => return Language::Ruby,
            ".bashrc" | ".bash_profile" | ".zshrc" | ".profile" => return Language::Shell,
            ".editorconfig" => return Language::Ini,
            _ => {}
        }
        if name.starts_with("dockerfile.") {
            return Language::Dockerfile;
        }
        let Some((_, extension)) = name.rsplit_once('.') else {
            return Language::Unknown;
        };
        match extension {
            "rs" => Language::Rust,
            "py" | "pyi" | "pyw" => Language::Python,
            "js" | "mjs" | "cjs" | "jsx" => Language::JavaScript,
            "ts" | "mts" | "cts" | "tsx" => Language::TypeScript,
            "go" => Language::Go,
            "c" | "h" | "m" => Language::C,
            "cc" | "cpp" | "cxx" | "c++" | "hpp" | "hh" | "hxx" | "ino" | "cu" | "mm" => {
                Language::Cpp
            }
            "cs" => Language::CSharp,
            "java" => Language::Java,
            "kt" | "kts" => Language::Kotlin,
            "scala" | "sc" => Language::Scala,
            "swift" => Language::Swift,
            "dart" => Language::Dart,
            "php" => Language::Php,
            "zig" => Language::Zig,
            "lua" => Language::Lua,
            "sql" => Language::Sql,
            "hs" => Language::Haskell,
            "ml" | "mli" => Language::OCaml,
            "lisp" | "lsp" | "cl" | "el" => Language::Lisp,
            "clj" | "cljs" | "cljc" | "edn" => Language::Clojure,
            "scm" | "ss" | "rkt" => Language::Scheme,
            "sh" | "bash" | "zsh" | "ksh" | "fish" => Language::Shell,
            "rb" | "rake" | "gemspec" => Language::Ruby,
            "pl" | "pm" => Language::Perl,
            "r" => Language::R,
            "ex" | "exs" => Language::Elixir,
            "erl" | "hrl" => Language::Erlang,
            "nix" => Language::Nix,
            "toml" | "lock" => Language::Toml,
            "yaml" | "yml" => Language::Yaml,
            "json" | "jsonc" | "json5" => Language::Json,
            "html" | "htm" | "xhtml" => Language::Html,
            "xml" | "xsd" | "xsl" | "svg" | "plist" => Language::Xml,
            "vue" | "svelte" => Language::Vue,
            "md" | "markdown" => Language::Markdown,
            "css" => Language::Css,
            "scss" | "less" => Language::Scss,
            "dockerfile" => Language::Dockerfile,
            "mk" | "mak" => Language::Makefile,
            "cmake" => Language::CMake,
            "tf" | "tfvars" | "hcl" => Language::Terraform,
            "proto" => Language::Protobuf,
            "graphql" | "gql" => Language::GraphQl,
            "tex" | "sty" | "cls" | "bib" => Language::Latex,
            "ini" | "cfg" | "conf" | "properties" => Language::Ini,
            _ => Language::Unknown,
        }
    }

    /// The canonical id, as serialized; also a good Markdown fence tag.
    pub fn id(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::Python => "python",
            Language::JavaScript => "javascript",
            Language::TypeScript => "typescript",
            Language::Go => "go",
            Language::C => "c",
            Language::Cpp => "cpp",
            Language::CSharp => "csharp",
            Language::Java => "java",
            Language::Kotlin => "kotlin",
            Language::Scala => "scala",
            Language::Swift => "swift",
            Language::Dart => "dart",
            Language::Php => "php",
            Language::Zig => "zig",
            Language::Lua => "lua",
            Language::Sql => "sql",
            Language::Haskell => "haskell",
            Language::OCaml => "ocaml",
            Language::Lisp => "lisp",
            Language::Clojure => "clojure",
            Language::Scheme => "scheme",
            Language::Shell => "shell",
            Language::Ruby => "ruby",
            Language::Perl => "perl",
            Language::R => "r",
            Language::Elixir => "elixir",
            Language::Erlang => "erlang",
            Language::Nix => "nix",
            Language::Toml => "toml",
            Language::Yaml => "yaml",
            Language::Json => "json",
            Language::Html => "html",
            Language::Xml => "xml",
            Language::Vue => "vue",
            Language::Markdown => "markdown",
            Language::Css => "css",
            Language::Scss => "scss",
            Language::Dockerfile => "dockerfile",
            Language::Makefile => "makefile",
            Language::CMake => "cmake",
            Language::Terraform => "terraform",
            Language::Protobuf => "protobuf",
            Language::GraphQl => "graphql",
            Language::Latex => "latex",
            Language::Ini => "ini",
            Language::Unknown => "unknown",
        }
    }

    /// A human name for prompts, `None` for [`Language::Unknown`].
    pub fn display_name(self) -> Option<&'static str> {
        let name = match self {
            Language::Rust => "Rust",
            Language::Python => "Python",
            Language::JavaScript => "JavaScript",
            Language::TypeScript => "TypeScript",
            Language::Go => "Go",
            Language::C => "C",
            Language::Cpp => "C++",
            Language::CSharp => "C#",
            Language::Java => "Java",
            Language::Kotlin => "Kotlin",
            Language::Scala => "Scala",
            Language::Swift => "Swift",
            Language::Dart => "Dart",
            Language::Php => "PHP",
            Language::Zig => "Zig",
            Language::Lua => "Lua",
            Language::Sql => "SQL",
            Language::Haskell => "Haskell",
            Language::OCaml => "OCaml",
            Language::Lisp => "Lisp",
            Language::Clojure => "Clojure",
            Language::Scheme => "Scheme",
            Language::Shell => "shell",
            Language::Ruby => "Ruby",
            Language::Perl => "Perl",
            Language::R => "R",
            Language::Elixir => "Elixir",
            Language::Erlang => "Erlang",
            Language::Nix => "Nix",
            Language::Toml => "TOML",
            Language::Yaml => "YAML",
            Language::Json => "JSON",
            Language::Html => "HTML",
            Language::Xml => "XML",
            Language::Vue => "Vue",
            Language::Markdown => "Markdown",
            Language::Css => "CSS",
            Language::Scss => "SCSS",
            Language::Dockerfile => "Dockerfile",
            Language::Makefile => "Makefile",
            Language::CMake => "CMake",
            Language::Terraform => "Terraform",
            Language::Protobuf => "Protocol Buffers",
            Language::GraphQl => "GraphQL",
            Language::Latex => "LaTeX",
            Language::Ini => "INI",
            Language::Unknown => return None,
        };
        Some(name)
    }

    pub fn comments(self) -> CommentSyntax {
        let (line, block, docstring, line_needs_space): (
            &'static [&'static str],
            &'static [BlockComment],
            &'static [&'static str],
            bool,
        ) = match self {
            Language::C
            | Language::Cpp
            | Language::CSharp
            | Language::Java
            | Language::JavaScript
            | Language::TypeScript
            | Language::Go
            | Language::Json
            | Language::Scss
            | Language::Protobuf => (&["//"], C_BLOCK, &[], false),
            Language::Rust
            | Language::Kotlin
            | Language::Scala
            | Language::Swift
            | Language::Dart => (&["//"], NESTED_C_BLOCK, &[], false),
            Language::Zig => (&["//"], &[], &[], false),
            Language::Css => (&[], C_BLOCK, &[], false),
            Language::Php => (&["//", "#"], C_BLOCK, &[], false),
            Language::Terraform => (&["#", "//"], C_BLOCK, &[], false),
            Language::Nix => (&["#"], C_BLOCK, &[], false),
            Language::Python => (&["#"], &[], &["\"\"\"", "'''"], false),
            Language::Shell | Language::Yaml => (&["#"], &[], &[], true),
            Language::Ruby
            | Language::Perl
            | Language::R
            | Language::Elixir
            | Language::Toml
            | Language::Dockerfile
            | Language::Makefile
            | Language::GraphQl => (&["#"], &[], &[], false),
            Language::CMake => (&["#"], CMAKE_BLOCK, &[], false),
            Language::Lua => (&["--"], LUA_BLOCK, &[], false),
            Language::Sql => (&["--"], C_BLOCK, &[], false),
            Language::Haskell => (&["--"], HASKELL_BLOCK, &[], false),
            Language::OCaml => (&[], OCAML_BLOCK, &[], false),
            Language::Lisp | Language::Scheme => (&[";"], LISP_BLOCK, &[], false),
            Language::Clojure => (&[";"], &[], &[], false),
            Language::Erlang | Language::Latex => (&["%"], &[], &[], false),
            Language::Ini => (&[";", "#"], &[], &[], false),
            Language::Html | Language::Xml | Language::Markdown => (&[], HTML_BLOCK, &[], false),
            Language::Vue => (&["//"], HTML_AND_C_BLOCK, &[], false),
            Language::Unknown => (&["//", "#", "--", ";"], HTML_AND_C_BLOCK, &[], false),
        };
        CommentSyntax {
            line,
            block,
            docstring,
            line_needs_space,
        }
    }

    pub(crate) fn strings(self) -> StringSyntax {
        let (quotes, char_literals): (&'static [Quote], bool) = match self {
            Language::Rust
            | Language::C
            | Language::Cpp
            | Language::CSharp
            | Language::Zig
            | Language::Haskell
            | Language::OCaml => (&[DQ], true),
            Language::Java | Language::Kotlin | Language::Scala => (&[DQ_TRIPLE, DQ], true),
            Language::Go => (&[DQ, BACKTICK_RAW], true),
            Language::Swift => (&[DQ_TRIPLE, DQ], false),
            Language::JavaScript | Language::TypeScript | Language::Vue => {
                (&[DQ, SQ, TEMPLATE], false)
            }
            Language::Python | Language::Dart => (&[DQ_TRIPLE, SQ_TRIPLE, DQ, SQ], false),
            Language::Toml => (&[DQ_TRIPLE, SQ_TRIPLE, DQ, SQ_RAW], false),
            Language::Lua => (&[LUA_LONG, DQ, SQ], false),
            Language::Shell | Language::Sql => (&[DQ, SQ_RAW], false),
            Language::Lisp | Language::Clojure | Language::Scheme | Language::Json => {
                (&[DQ], false)
            }
            Language::Html
            | Language::Xml
            | Language::Markdown
            | Language::Makefile
            | Language::Latex
            | Language::Ini => (&[], false),
            Language::Php
            | Language::Ruby
            | Language::Perl
            | Language::R
            | Language::Elixir
            | Language::Erlang
            | Language::Nix
            | Language::Yaml
            | Language::Css
            | Language::Scss
            | Language::Dockerfile
            | Language::CMake
            | Language::Terraform
            | Language::Protobuf
            | Language::GraphQl
            | Language::Unknown => (&[DQ, SQ], false),
        };
        StringSyntax {
            quotes,
            char_literals,
        }
    }

    pub(crate) fn block_style(self) -> BlockStyle {
        match self {
            Language::Rust
            | Language::JavaScript
            | Language::TypeScript
            | Language::Go
            | Language::C
            | Language::Cpp
            | Language::CSharp
            | Language::Java
            | Language::Kotlin
            | Language::Scala
            | Language::Swift
            | Language::Dart
            | Language::Php
            | Language::Zig
            | Language::Perl
            | Language::R
            | Language::Nix
            | Language::Json
            | Language::Css
            | Language::Scss
            | Language::Terraform
            | Language::Protobuf
            | Language::GraphQl => BlockStyle::Braces,
            Language::Lisp | Language::Clojure | Language::Scheme => BlockStyle::Parens,
            Language::Python
            | Language::Yaml
            | Language::Haskell
            | Language::OCaml
            | Language::Lua
            | Language::Ruby
            | Language::Elixir
            | Language::Erlang
            | Language::Shell
            | Language::Html
            | Language::Xml
            | Language::Vue
            | Language::CMake
            | Language::Makefile
            | Language::Unknown => BlockStyle::Indentation,
            Language::Sql
            | Language::Toml
            | Language::Markdown
            | Language::Dockerfile
            | Language::Latex
            | Language::Ini => BlockStyle::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_language_from_path() {
        let cases = [
            ("src/main.rs", Language::Rust),
            ("app/models.py", Language::Python),
            ("web/index.tsx", Language::TypeScript),
            ("web/app.mjs", Language::JavaScript),
            ("cmd/main.go", Language::Go),
            ("include/list.h", Language::C),
            ("src/list.cpp", Language::Cpp),
            ("src/Main.java", Language::Java),
            ("init.lua", Language::Lua),
            ("db/schema.sql", Language::Sql),
            ("src/Lib.hs", Language::Haskell),
            ("core.clj", Language::Clojure),
            ("main.scm", Language::Scheme),
            ("scripts/build.sh", Language::Shell),
            ("app/user.rb", Language::Ruby),
            ("Cargo.toml", Language::Toml),
            (".github/workflows/ci.yml", Language::Yaml),
            ("docs/index.html", Language::Html),
            ("pom.xml", Language::Xml),
            ("README.md", Language::Markdown),
            ("style.css", Language::Css),
            ("Makefile", Language::Makefile),
            ("docker/Dockerfile", Language::Dockerfile),
            ("Gemfile", Language::Ruby),
            (r"C:\work\src\lib.RS", Language::Rust),
            ("LICENSE", Language::Unknown),
            ("notes.txt", Language::Unknown),
        ];
        for (path, expected) in cases {
            assert_eq!(Language::from_path(path), expected, "{path}");
        }
    }

    #[test]
    fn prefers_the_client_language_id() {
        let cases = [
            (Some("typescriptreact"), "a.js", Language::TypeScript),
            (Some("shellscript"), "x", Language::Shell),
            (Some("sh"), "x", Language::Shell),
            (Some("commonlisp"), "x", Language::Lisp),
            (Some("no-such-language"), "a.py", Language::Python),
            (None, "a.py", Language::Python),
        ];
        for (id, path, expected) in cases {
            assert_eq!(Language::detect(id, path), expected, "{id:?} {path}");
        }
    }

    #[test]
    fn ids_round_trip_through_serde_and_lsp_ids() {
        for &language in Language::ALL {
            let json = serde_json::to_string(&language).unwrap();
            assert_eq!(json, format!("\"{}\"", language.id()));
            let back: Language = serde_json::from_str(&json).unwrap();
            assert_eq!(back, language);
            if language != Language::Unknown {
                assert_eq!(Language::from_lsp_id(language.id()), Some(language));
                assert!(language.display_name().is_some());
            }
        }
    }

    #[test]
    fn every_language_has_a_comment_syntax() {
        for &language in Language::ALL {
            let comments = language.comments();
            assert!(
                !comments.line.is_empty() || !comments.block.is_empty(),
                "{language:?} has no comments"
            );
        }
    }
}
