//! Writes the prompt that a coding agent receives for a TODO or a selection, and
//! the short title that names the task in the editor and in its branch.
//!
//! The prompt says what to do, where (path and line), shows the code with line
//! numbers, and asks the agent to make the change in the repository and to resolve
//! the TODO comment. Code is capped at [`MAX_CONTEXT_LINES`] lines and
//! [`MAX_CONTEXT_BYTES`] bytes, with a note where some is left out; the instruction
//! itself is never cut, since it is the user's own words.
//!
//! (`let _ = writeln!(…)` below: writing to a `String` cannot fail.)

use std::fmt::Write;
use std::ops::Range;

use super::enclosing::{CodeContext, ContextKind};
use super::language::Language;
use super::lines::LineRange;
use super::todo::Todo;

pub const MAX_CONTEXT_LINES: usize = 400;
pub const MAX_CONTEXT_BYTES: usize = 64 * 1024;
/// Longer lines (minified code, data) are cut in the excerpt.
const MAX_LINE_BYTES: usize = 1000;
pub const MAX_TITLE_CHARS: usize = 60;

/// Everything the prompt is built from.
#[derive(Debug, Clone, Copy)]
pub struct PromptRequest<'a> {
    /// Repository-relative, with `/` separators.
    pub path: &'a str,
    pub language: Language,
    /// What to do: the TODO's text, or the user's instruction for a selection.
    pub instruction: &'a str,
    pub target: Target<'a>,
    /// The enclosing block, or the lines around the target.
    pub context: Option<&'a CodeContext>,
}

/// What the task was started from.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    Todo(&'a Todo),
    Selection {
        lines: LineRange,
        /// The selected text exactly, which may start or end inside a line.
        text: &'a str,
    },
}

impl Target<'_> {
    /// The lines the task was started from.
    pub fn lines(&self) -> LineRange {
        match self {
            Target::Todo(todo) => todo.lines,
            Target::Selection { lines, .. } => *lines,
        }
    }
}

pub fn build_prompt(request: &PromptRequest<'_>) -> String {
    let mut budget = Budget {
        lines: MAX_CONTEXT_LINES,
        bytes: MAX_CONTEXT_BYTES,
    };
    let mut out = String::from("# Task\n\n");
    write_task(&mut out, request, &mut budget);
    write_code(&mut out, request, &mut budget);
    write_how_to_finish(&mut out, request);
    out
}

/// What to do and where; a selection that does not cover whole lines is shown as
/// it is, since the code below shows whole lines.
fn write_task(out: &mut String, request: &PromptRequest<'_>, budget: &mut Budget) {
    let location = format!("`{}`", request.path);
    let language = request
        .language
        .display_name()
        .map(|name| format!(" ({name})"))
        .unwrap_or_default();
    let instruction = request.instruction.trim();
    match request.target {
        Target::Todo(todo) => {
            let marker = todo.marker.as_str();
            let line = todo.lines.first + 1;
            let place = format!("{location}{language} at line {line}");
            if instruction.is_empty() {
                let _ = writeln!(
                    out,
                    "Resolve the {marker} comment in {place}; what it asks for follows from \
                     the code around it."
                );
                return;
            }
            let _ = writeln!(out, "Resolve the {marker} comment in {place}:\n");
            for line in instruction.lines().map(str::trim_end) {
                let space = if line.is_empty() { "" } else { " " };
                let _ = writeln!(out, ">{space}{line}");
            }
        }
        Target::Selection { lines, text } => {
            let place = format!("{location}{language}, {}", describe(lines));
            if instruction.is_empty() {
                let _ = writeln!(out, "Improve the selected code in {place}.");
            } else {
                let _ = writeln!(out, "{instruction}\n");
                let _ = writeln!(out, "This applies to the selected code in {place}.");
            }
            let shown_below = request.context.is_some_and(|context| {
                context.lines.contains_range(lines)
                    && whole_lines(context, lines) == normalize(text)
            });
            if !shown_below {
                out.push_str("\nThe selection, exactly:\n\n");
                let block = numbered(text, lines.first, None, request.language, budget);
                out.push_str(&block);
            }
        }
    }
}

/// The enclosing block or surrounding lines, with the target's lines marked.
fn write_code(out: &mut String, request: &PromptRequest<'_>, budget: &mut Budget) {
    let marked = request.target.lines();
    let Some(context) = request.context else {
        return;
    };
    // Shown even when the target covers the whole context: `write_task` leaves the
    // selection's text to this block whenever the block contains it.
    if budget.lines == 0 || budget.bytes == 0 {
        return;
    }
    let what = match context.kind {
        ContextKind::EnclosingBlock => "The enclosing function or block",
        ContextKind::SurroundingLines => "The code around it",
    };
    let which = match request.target {
        Target::Todo(_) => "the lines of the comment",
        Target::Selection { .. } => "the selected lines",
    };
    let _ = writeln!(
        out,
        "\n# Code\n\n{what}, {} of `{}`; {which} are marked with `>`:\n",
        describe(context.lines),
        request.path,
    );
    let block = numbered(
        &context.text,
        context.lines.first,
        Some(marked),
        request.language,
        budget,
    );
    out.push_str(&block);
}

fn write_how_to_finish(out: &mut String, request: &PromptRequest<'_>) {
    out.push_str("\n# How to finish\n\n");
    out.push_str(
        "- Make the change in the repository's files. Keep it focused on this task and \
         consistent with the code around it.\n",
    );
    match request.target {
        Target::Todo(todo) => {
            let _ = writeln!(
                out,
                "- Remove the {} comment ({} of `{}`) once it is resolved; if you resolve \
                 only part of it, reword it to say what is left.",
                todo.marker.as_str(),
                describe(todo.lines),
                request.path,
            );
        }
        Target::Selection { .. } => {
            out.push_str("- Change code outside the selection only where the task needs it.\n");
        }
    }
    out.push_str("- The line numbers shown above are not part of the file.\n");
}

/// A short name for the task, from its instruction: at most [`MAX_TITLE_CHARS`]
/// characters, on one line.
pub fn title(request: &PromptRequest<'_>) -> String {
    let words: Vec<&str> = request.instruction.split_whitespace().collect();
    let shortened = shorten(&words.join(" "), MAX_TITLE_CHARS);
    let from_instruction = shortened.trim_end_matches(['.', ':', ';', ',']);
    if from_instruction.chars().any(char::is_alphanumeric) {
        return capitalize(from_instruction);
    }
    let file = request.path.rsplit('/').next().unwrap_or(request.path);
    let fallback = match request.target {
        Target::Todo(todo) => format!("Resolve {} in {file}", todo.marker.as_str()),
        Target::Selection { .. } => format!("Change {file}"),
    };
    shorten(&fallback, MAX_TITLE_CHARS)
}

/// `text` cut to `max` characters at a word boundary, with `…` where it was cut.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut = text
        .char_indices()
        .nth(max - 1)
        .map_or(text.len(), |(at, _)| at);
    let head = &text[..cut];
    let head = match head.rfind(' ') {
        Some(space) if space >= cut / 2 => &head[..space],
        _ => head,
    };
    format!("{}…", head.trim_end_matches([' ', ',', ';', ':', '.', '-']))
}

/// "line 3" or "lines 3–5", numbered from 1 as editors show them.
fn describe(lines: LineRange) -> String {
    if lines.first == lines.last {
        format!("line {}", lines.first + 1)
    } else {
        format!("lines {}–{}", lines.first + 1, lines.last + 1)
    }
}

/// The lines `lines` of `context`, in the form a selection of whole lines has.
fn whole_lines(context: &CodeContext, lines: LineRange) -> String {
    let skip = lines.first - context.lines.first;
    let kept: Vec<&str> = context
        .text
        .split('\n')
        .skip(skip)
        .take(lines.line_count())
        .collect();
    kept.join("\n")
}

fn normalize(text: &str) -> String {
    let text = text.replace("\r\n", "\n");
    text.strip_suffix('\n').unwrap_or(&text).to_string()
}

/// What is left of the caps on code shown in one prompt.
struct Budget {
    lines: usize,
    bytes: usize,
}

impl Budget {
    fn take(&mut self, line: &str) -> bool {
        let cost = line.len().min(MAX_LINE_BYTES) + 1;
        if self.lines == 0 || self.bytes < cost {
            return false;
        }
        self.lines -= 1;
        self.bytes -= cost;
        true
    }
}

/// A fenced code block of `text` whose first line is line `first`, with line numbers,
/// and as much as `budget` allows: from the top, or around the lines in `marked`,
/// which get a `>` before them.
fn numbered(
    text: &str,
    first: usize,
    marked: Option<LineRange>,
    language: Language,
    budget: &mut Budget,
) -> String {
    let normalized = normalize(text);
    let lines: Vec<&str> = normalized.split('\n').collect();
    let shown = pick(&lines, first, marked, budget);
    let width = (first + shown.end).to_string().len();
    let mut body = String::new();
    for (index, line) in lines[shown.clone()].iter().enumerate() {
        let number = first + shown.start + index;
        let mark = match marked {
            Some(marked) if marked.contains(number) => "> ",
            Some(_) => "  ",
            None => "",
        };
        let numbered = format!("{mark}{:>width$} | {}", number + 1, clip(line));
        let _ = writeln!(body, "{}", numbered.trim_end());
    }
    let fence = "`".repeat(longest_backtick_run(&body).max(2) + 1);
    let tag = match language {
        Language::Unknown => "",
        language => language.id(),
    };
    let mut out = format!("{fence}{tag}\n{body}{fence}\n");
    let left_out: Vec<String> = [0..shown.start, shown.end..lines.len()]
        .into_iter()
        .filter(|range| !range.is_empty())
        .map(|range| describe(LineRange::new(first + range.start, first + range.end - 1)))
        .collect();
    if !left_out.is_empty() {
        let _ = writeln!(
            out,
            "\n({} not shown: code in this prompt is capped at {MAX_CONTEXT_LINES} lines and \
             {} KiB. Read the file for the rest.)",
            capitalize(&left_out.join(" and ")),
            MAX_CONTEXT_BYTES / 1024
        );
    }
    out
}

/// The indices of the lines to show: from the top, or growing around `focus`.
fn pick(
    lines: &[&str],
    first: usize,
    focus: Option<LineRange>,
    budget: &mut Budget,
) -> Range<usize> {
    let index = |line: usize| line.saturating_sub(first).min(lines.len());
    let (focus_start, focus_end) = match focus {
        Some(focus) => (
            index(focus.first),
            index(focus.last + 1).max(index(focus.first)),
        ),
        None => (0, lines.len()),
    };
    let (mut start, mut end) = (focus_start, focus_start);
    while end < focus_end && budget.take(lines[end]) {
        end += 1;
    }
    if end < focus_end {
        return start..end;
    }
    // Alternate below and above, so the focus stays in the middle.
    loop {
        let below = end < lines.len() && budget.take(lines[end]);
        if below {
            end += 1;
        }
        let above = start > 0 && budget.take(lines[start - 1]);
        if above {
            start -= 1;
        }
        if !below && !above {
            return start..end;
        }
    }
}

fn clip(line: &str) -> String {
    if line.len() <= MAX_LINE_BYTES {
        return line.to_string();
    }
    let mut cut = MAX_LINE_BYTES;
    while !line.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{} …(line cut, {} bytes)", &line[..cut], line.len())
}

fn longest_backtick_run(text: &str) -> usize {
    text.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::enclosing::code_context;
    use crate::context::fixture::{cursor, selection};
    use crate::context::todo::find_todo;
    use insta::assert_snapshot;

    /// The title and prompt for the TODO at `$0` in a file at `path`.
    fn todo_prompt(path: &str, fixture: &str) -> String {
        let language = Language::from_path(path);
        let (text, line) = cursor(fixture);
        let todo = find_todo(&text, line, language).expect("a TODO at $0");
        let context = code_context(&text, todo.lines, language);
        let instruction = todo.description();
        let request = PromptRequest {
            path,
            language,
            instruction: &instruction,
            target: Target::Todo(&todo),
            context: Some(&context),
        };
        format!("title: {}\n\n{}", title(&request), build_prompt(&request))
    }

    /// The title and prompt for the whole lines between the `$0` markers, or for
    /// `exact` when the selection starts or ends inside a line.
    fn selection_prompt(
        path: &str,
        fixture: &str,
        exact: Option<&str>,
        instruction: &str,
    ) -> String {
        let language = Language::from_path(path);
        let (text, lines) = selection(fixture);
        let whole = crate::context::lines::excerpt(&text, lines);
        let context = code_context(&text, lines, language);
        let request = PromptRequest {
            path,
            language,
            instruction,
            target: Target::Selection {
                lines,
                text: exact.unwrap_or(&whole),
            },
            context: Some(&context),
        };
        format!("title: {}\n\n{}", title(&request), build_prompt(&request))
    }

    #[test]
    fn todo_in_a_rust_function() {
        let fixture = r#"
use std::fmt;

/// Sums.
pub fn sum(xs: &[u32]) -> u32 {
    // TODO: handle the empty list$0
    //       and overflow
    xs.iter().sum()
}

fn other() {}
"#;
        assert_snapshot!(todo_prompt("src/sum.rs", fixture), @r"
            title: Handle the empty list and overflow

            # Task

            Resolve the TODO comment in `src/sum.rs` (Rust) at line 6:

            > handle the empty list
            > and overflow

            # Code

            The enclosing function or block, lines 4–9 of `src/sum.rs`; the lines of the comment are marked with `>`:

            ```rust
              4 | /// Sums.
              5 | pub fn sum(xs: &[u32]) -> u32 {
            > 6 |     // TODO: handle the empty list
            > 7 |     //       and overflow
              8 |     xs.iter().sum()
              9 | }
            ```

            # How to finish

            - Make the change in the repository's files. Keep it focused on this task and consistent with the code around it.
            - Remove the TODO comment (lines 6–7 of `src/sum.rs`) once it is resolved; if you resolve only part of it, reword it to say what is left.
            - The line numbers shown above are not part of the file.
        ");
    }

    #[test]
    fn bare_todo_between_statements() {
        let fixture = "import os\n\nx = 1\n# FIXME$0\ny = 2\n";
        assert_snapshot!(todo_prompt("app/jobs.py", fixture), @r"
            title: Resolve FIXME in jobs.py

            # Task

            Resolve the FIXME comment in `app/jobs.py` (Python) at line 4; what it asks for follows from the code around it.

            # Code

            The code around it, lines 1–5 of `app/jobs.py`; the lines of the comment are marked with `>`:

            ```python
              1 | import os
              2 |
              3 | x = 1
            > 4 | # FIXME
              5 | y = 2
            ```

            # How to finish

            - Make the change in the repository's files. Keep it focused on this task and consistent with the code around it.
            - Remove the FIXME comment (line 4 of `app/jobs.py`) once it is resolved; if you resolve only part of it, reword it to say what is left.
            - The line numbers shown above are not part of the file.
        ");
    }

    #[test]
    fn selection_of_whole_lines() {
        let fixture = r#"
export function total(xs: number[]) {
  let total = 0;
  for (const x of xs) {$0
    total += x;
  }$0
  return total;
}
"#;
        let prompt = selection_prompt(
            "web/total.ts",
            fixture,
            None,
            "Use reduce instead of the loop.",
        );
        assert_snapshot!(prompt, @r"
            title: Use reduce instead of the loop

            # Task

            Use reduce instead of the loop.

            This applies to the selected code in `web/total.ts` (TypeScript), lines 4–6.

            # Code

            The enclosing function or block, lines 2–8 of `web/total.ts`; the selected lines are marked with `>`:

            ```typescript
              2 | export function total(xs: number[]) {
              3 |   let total = 0;
            > 4 |   for (const x of xs) {
            > 5 |     total += x;
            > 6 |   }
              7 |   return total;
              8 | }
            ```

            # How to finish

            - Make the change in the repository's files. Keep it focused on this task and consistent with the code around it.
            - Change code outside the selection only where the task needs it.
            - The line numbers shown above are not part of the file.
        ");
    }

    #[test]
    fn selection_inside_a_line() {
        let fixture = "export function f(xs: number[]) {\n  return xs.map((x) => x * 2);$0\n}\n";
        let prompt = selection_prompt("web/f.ts", fixture, Some("(x) => x * 2"), "make it triple");
        assert_snapshot!(prompt, @r"
            title: Make it triple

            # Task

            make it triple

            This applies to the selected code in `web/f.ts` (TypeScript), line 2.

            The selection, exactly:

            ```typescript
            2 | (x) => x * 2
            ```

            # Code

            The enclosing function or block, lines 1–3 of `web/f.ts`; the selected lines are marked with `>`:

            ```typescript
              1 | export function f(xs: number[]) {
            > 2 |   return xs.map((x) => x * 2);
              3 | }
            ```

            # How to finish

            - Make the change in the repository's files. Keep it focused on this task and consistent with the code around it.
            - Change code outside the selection only where the task needs it.
            - The line numbers shown above are not part of the file.
        ");
    }

    #[test]
    fn titles_are_short_single_lines() {
        let one_word = "x".repeat(100);
        let one_word_title = format!("X{}…", "x".repeat(58));
        let unicode = "ünïcödé wörds ".repeat(10);
        let cases: &[(&str, &str)] = &[
            ("handle the empty list", "Handle the empty list"),
            (
                "Use reduce.\n\nAlso rename it.",
                "Use reduce. Also rename it",
            ),
            ("  spaces\tand\ttabs  ", "Spaces and tabs"),
            (
                "make the parser accept trailing commas in argument lists and in array literals",
                "Make the parser accept trailing commas in argument lists…",
            ),
            (&one_word, &one_word_title),
            (
                &unicode,
                "Ünïcödé wörds ünïcödé wörds ünïcödé wörds ünïcödé wörds…",
            ),
        ];
        let todo = find_todo("// TODO", 0, Language::Rust).unwrap();
        for &(instruction, expected) in cases {
            let request = PromptRequest {
                path: "a.rs",
                language: Language::Rust,
                instruction,
                target: Target::Todo(&todo),
                context: None,
            };
            let actual = title(&request);
            assert_eq!(actual, expected);
            assert!(actual.chars().count() <= MAX_TITLE_CHARS, "{actual}");
        }
    }

    #[test]
    fn huge_selections_are_cut_with_a_note() {
        let text = "let x = 1;\r\n".repeat(1000);
        let lines = LineRange::new(10, 1009);
        let request = PromptRequest {
            path: "src/big.rs",
            language: Language::Rust,
            instruction: "Simplify.",
            target: Target::Selection { lines, text: &text },
            context: None,
        };
        let prompt = build_prompt(&request);
        assert_eq!(prompt.matches("let x = 1;").count(), MAX_CONTEXT_LINES);
        assert!(!prompt.contains('\r'));
        assert!(
            prompt.contains("(Lines 411–1010 not shown: code in this prompt is capped at 400 lines and 64 KiB. Read the file for the rest.)"),
            "{prompt}"
        );
    }

    #[test]
    fn cut_context_stays_around_the_todo() {
        let mut text = "x();\n".repeat(1000);
        text.push_str("// TODO: here\n");
        text.push_str(&"y();\n".repeat(1000));
        let todo = find_todo(&text, 1000, Language::Rust).unwrap();
        let lines = LineRange::new(0, 2000);
        let context = CodeContext {
            kind: ContextKind::SurroundingLines,
            lines,
            text: crate::context::lines::excerpt(&text, lines),
        };
        let request = PromptRequest {
            path: "a.rs",
            language: Language::Rust,
            instruction: "here",
            target: Target::Todo(&todo),
            context: Some(&context),
        };
        let prompt = build_prompt(&request);
        assert!(prompt.contains("> 1001 | // TODO: here"), "{prompt}");
        assert_eq!(prompt.matches("x();").count(), 199);
        assert_eq!(prompt.matches("y();").count(), 200);
        assert!(
            prompt.contains("(Lines 1–801 and lines 1202–2001 not shown"),
            "{prompt}"
        );
    }

    #[test]
    fn long_lines_and_backticks_stay_readable() {
        let long = format!("let s = \"{}\";", "é".repeat(2000));
        let text = format!("```\n{long}\n```");
        let request = PromptRequest {
            path: "README.md",
            language: Language::Markdown,
            instruction: "Explain.",
            target: Target::Selection {
                lines: LineRange::new(0, 2),
                text: &text,
            },
            context: None,
        };
        let prompt = build_prompt(&request);
        assert!(prompt.contains("````markdown\n1 | ```\n"), "{prompt}");
        assert!(
            prompt.contains("…(line cut, 4011 bytes)\n3 | ```\n````\n"),
            "{prompt}"
        );
    }

    #[test]
    fn a_selection_covering_its_whole_block_still_shows_the_code() {
        let fixture =
            "$0def greet(name):\n    return \"hello, \" + name$0\n\nprint(greet(\"w\"))\n";
        let prompt = selection_prompt("greet.py", fixture, None, "Add tests");
        assert!(prompt.contains("def greet(name):"), "{prompt}");
        assert!(prompt.contains("return \"hello, \" + name"), "{prompt}");
    }
}
