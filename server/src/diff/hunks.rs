//! The agent's changes to one file, as line-based hunks.
//!
//! A hunk is one run of changed lines between the base text (the file when the
//! task started) and the result text (the file the agent produced). Hunks are
//! never merged across unchanged lines, so the user can accept or reject each
//! change on its own; the few unchanged lines kept around a hunk only help to
//! find it again after the user has edited the file (see `reanchor`).

use std::ops::Range;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use similar::{Algorithm, DiffOp};

/// Unchanged lines kept on each side of a hunk to find it again.
const CONTEXT_LINES: usize = 3;

/// After this long `similar` stops looking for the smallest diff and returns a
/// coarser one, still correct. A huge rewrite then shows as bigger hunks
/// instead of stalling the server.
const DIFF_TIMEOUT: Duration = Duration::from_millis(500);

/// One change region. Every line keeps its terminator (`\n`, `\r\n`, `\r` or
/// none for a last line without one), so applying hunks reproduces the result
/// text byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hunk {
    /// Position of the hunk among its file's hunks, in file order. It names
    /// the hunk while others are accepted or rejected around it.
    pub index: usize,
    /// Zero-based line in the base where `base_lines` start; for a pure
    /// insertion, the base line the new lines go before.
    pub base_start: usize,
    /// Zero-based line in the result where `new_lines` start.
    pub result_start: usize,
    /// Lines of the base that the hunk removes; empty for a pure insertion.
    pub base_lines: Vec<String>,
    /// Lines that the hunk puts in their place; empty for a pure deletion.
    pub new_lines: Vec<String>,
    /// Up to three unchanged base lines just before `base_lines`. Never lines
    /// of another hunk, so accepting a neighbour leaves them intact. Empty
    /// exactly when the hunk starts at the first line of the base.
    pub context_before: Vec<String>,
    /// Up to three unchanged base lines just after `base_lines`. Empty exactly
    /// when the hunk ends at the end of the base.
    pub context_after: Vec<String>,
}

impl Hunk {
    /// Zero-based base line just past `base_lines`.
    pub fn base_end(&self) -> usize {
        self.base_start + self.base_lines.len()
    }

    pub fn is_insertion(&self) -> bool {
        self.base_lines.is_empty()
    }

    /// Whether the hunk makes the whole file out of an empty one (the task created
    /// the file): nothing removed, nothing around it.
    pub fn creates_file(&self) -> bool {
        self.base_start == 0
            && self.base_lines.is_empty()
            && self.context_before.is_empty()
            && self.context_after.is_empty()
    }

    pub fn is_deletion(&self) -> bool {
        self.new_lines.is_empty()
    }
}

/// The hunks that turn `base` into `result`, in file order.
pub fn compute_hunks(base: &str, result: &str) -> Vec<Hunk> {
    let base_lines = split_lines(base);
    let result_lines = split_lines(result);
    let ops = similar::capture_diff_slices_deadline(
        Algorithm::Myers,
        &base_lines,
        &result_lines,
        Some(Instant::now() + DIFF_TIMEOUT),
    );
    let regions = changed_regions(&ops);
    let owned = |lines: &[&str]| lines.iter().map(|line| line.to_string()).collect();
    regions
        .iter()
        .enumerate()
        .map(|(index, (removed, added))| {
            let previous_end = index
                .checked_sub(1)
                .map_or(0, |previous| regions[previous].0.end);
            let next_start = regions
                .get(index + 1)
                .map_or(base_lines.len(), |next| next.0.start);
            let before = removed
                .start
                .saturating_sub(CONTEXT_LINES)
                .max(previous_end);
            let after = (removed.end + CONTEXT_LINES).min(next_start);
            Hunk {
                index,
                base_start: removed.start,
                result_start: added.start,
                base_lines: owned(&base_lines[removed.clone()]),
                new_lines: owned(&result_lines[added.clone()]),
                context_before: owned(&base_lines[before..removed.start]),
                context_after: owned(&base_lines[removed.end..after]),
            }
        })
        .collect()
}

/// Lines with their terminators, split the way `similar` splits them: at
/// `\n`, `\r\n` and a lone `\r`. A text ending with a terminator has no empty
/// last line here.
pub(super) fn split_lines(text: &str) -> Vec<&str> {
    similar::DiffableStr::tokenize_lines(text)
}

/// Base and result line ranges of each run of consecutive non-equal ops.
fn changed_regions(ops: &[DiffOp]) -> Vec<(Range<usize>, Range<usize>)> {
    let mut regions: Vec<(Range<usize>, Range<usize>)> = Vec::new();
    for op in ops {
        let (tag, removed, added) = op.as_tag_tuple();
        if tag == similar::DiffTag::Equal {
            continue;
        }
        match regions.last_mut() {
            // Touching on both sides means no unchanged line in between.
            Some((last_removed, last_added))
                if last_removed.end == removed.start && last_added.end == added.start =>
            {
                last_removed.end = removed.end;
                last_added.end = added.end;
            }
            _ => regions.push((removed, added)),
        }
    }
    regions
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One line per hunk: `#index @base/result [before] -[removed] +[added] [after]`.
    fn render(hunk: &Hunk) -> String {
        format!(
            "#{} @{}/{} {:?} -{:?} +{:?} {:?}",
            hunk.index,
            hunk.base_start,
            hunk.result_start,
            hunk.context_before,
            hunk.base_lines,
            hunk.new_lines,
            hunk.context_after
        )
    }

    #[test]
    fn computes_hunks() {
        // (case, base, result, rendered hunks)
        let cases: &[(&str, &str, &str, &[&str])] = &[
            ("identical", "a\nb\n", "a\nb\n", &[]),
            ("both empty", "", "", &[]),
            (
                "replaced line",
                "a\nb\nc\n",
                "a\nB\nc\n",
                &[r#"#0 @1/1 ["a\n"] -["b\n"] +["B\n"] ["c\n"]"#],
            ),
            (
                "context is three lines",
                "1\n2\n3\n4\n5\n6\n7\n",
                "1\n2\n3\nX\n5\n6\n7\n",
                &[r#"#0 @3/3 ["1\n", "2\n", "3\n"] -["4\n"] +["X\n"] ["5\n", "6\n", "7\n"]"#],
            ),
            (
                "one unchanged line apart",
                "a\nb\nc\n",
                "A\nb\nC\n",
                &[
                    r#"#0 @0/0 [] -["a\n"] +["A\n"] ["b\n"]"#,
                    r#"#1 @2/2 ["b\n"] -["c\n"] +["C\n"] []"#,
                ],
            ),
            (
                "context stops at neighbours",
                "a\nb\nc\nd\ne\n",
                "A\nb\nc\nd\nE\n",
                &[
                    r#"#0 @0/0 [] -["a\n"] +["A\n"] ["b\n", "c\n", "d\n"]"#,
                    r#"#1 @4/4 ["b\n", "c\n", "d\n"] -["e\n"] +["E\n"] []"#,
                ],
            ),
            (
                "adjacent lines are one hunk",
                "a\nb\nc\n",
                "A\nB\nc\n",
                &[r#"#0 @0/0 [] -["a\n", "b\n"] +["A\n", "B\n"] ["c\n"]"#],
            ),
            (
                "deletion next to insertion",
                "a\nb\nc\n",
                "a\nc\nx\n",
                &[
                    r#"#0 @1/1 ["a\n"] -["b\n"] +[] ["c\n"]"#,
                    r#"#1 @3/2 ["c\n"] -[] +["x\n"] []"#,
                ],
            ),
            (
                "pure insertion",
                "a\nb\n",
                "a\nx\ny\nb\n",
                &[r#"#0 @1/1 ["a\n"] -[] +["x\n", "y\n"] ["b\n"]"#],
            ),
            (
                "insertion at start",
                "a\n",
                "x\na\n",
                &[r#"#0 @0/0 [] -[] +["x\n"] ["a\n"]"#],
            ),
            (
                "insertion at end",
                "a\n",
                "a\nx\n",
                &[r#"#0 @1/1 ["a\n"] -[] +["x\n"] []"#],
            ),
            (
                "pure deletion",
                "a\nb\nc\n",
                "a\nc\n",
                &[r#"#0 @1/1 ["a\n"] -["b\n"] +[] ["c\n"]"#],
            ),
            (
                "file created",
                "",
                "a\nb\n",
                &[r#"#0 @0/0 [] -[] +["a\n", "b\n"] []"#],
            ),
            (
                "file deleted",
                "a\nb\n",
                "",
                &[r#"#0 @0/0 [] -["a\n", "b\n"] +[] []"#],
            ),
            (
                "crlf",
                "a\r\nb\r\nc\r\n",
                "a\r\nB\r\nc\r\n",
                &[r#"#0 @1/1 ["a\r\n"] -["b\r\n"] +["B\r\n"] ["c\r\n"]"#],
            ),
            (
                "lf to crlf",
                "a\nb\n",
                "a\r\nb\r\n",
                &[r#"#0 @0/0 [] -["a\n", "b\n"] +["a\r\n", "b\r\n"] []"#],
            ),
            (
                "lone cr",
                "a\rb\rc",
                "a\rB\rc",
                &[r#"#0 @1/1 ["a\r"] -["b\r"] +["B\r"] ["c"]"#],
            ),
            (
                "no final newline",
                "a\nb",
                "a\nB",
                &[r#"#0 @1/1 ["a\n"] -["b"] +["B"] []"#],
            ),
            (
                "final newline added",
                "a\nb",
                "a\nb\n",
                &[r#"#0 @1/1 ["a\n"] -["b"] +["b\n"] []"#],
            ),
            (
                "appended after no final newline",
                "a",
                "a\nb",
                &[r#"#0 @0/0 [] -["a"] +["a\n", "b"] []"#],
            ),
            (
                "emoji and cjk",
                "\tlet s = \"中\";\n😀\n",
                "\tlet s = \"文\";\n😀\n",
                &["#0 @0/0 [] -[\"\\tlet s = \\\"中\\\";\\n\"] +[\"\\tlet s = \\\"文\\\";\\n\"] [\"😀\\n\"]"],
            ),
        ];
        for &(case, base, result, expected) in cases {
            let actual: Vec<_> = compute_hunks(base, result).iter().map(render).collect();
            assert_eq!(actual, expected, "{case}");
        }
    }

    #[test]
    fn kinds() {
        // (base, result, is_insertion, is_deletion, base_end)
        let cases = [
            ("a\n", "a\nb\n", true, false, 1),
            ("a\nb\n", "a\n", false, true, 2),
            ("a\n", "b\n", false, false, 1),
        ];
        for (base, result, insertion, deletion, base_end) in cases {
            let hunks = compute_hunks(base, result);
            assert_eq!(hunks.len(), 1, "{base:?} -> {result:?}");
            assert_eq!(hunks[0].is_insertion(), insertion, "{base:?} -> {result:?}");
            assert_eq!(hunks[0].is_deletion(), deletion, "{base:?} -> {result:?}");
            assert_eq!(hunks[0].base_end(), base_end, "{base:?} -> {result:?}");
        }
    }

    /// Hunks are persisted with their task; terminators must survive.
    #[test]
    fn serde_round_trip() {
        let hunks = compute_hunks("a\r\nb\nc", "a\r\nB\r\nc");
        let json = serde_json::to_string(&hunks).expect("hunks serialize");
        let back: Vec<Hunk> = serde_json::from_str(&json).expect("hunks deserialize");
        assert_eq!(back, hunks);
    }
}
