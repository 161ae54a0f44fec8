//! Accepting hunks: the byte-range edits that put a hunk's new lines in place
//! of its base lines in the current text. Rejecting a hunk needs no edit: the
//! buffer already holds the base lines.

use std::ops::Range;

use super::conflict::Conflict;
use super::hunks::Hunk;
use super::reanchor::{locate, SplitText};

/// Replace bytes `start..end` of the text with `new_text`. The range always
/// covers whole lines, terminators included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub start: usize,
    pub end: usize,
    pub new_text: String,
}

/// The outcome of accepting several hunks at once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AcceptAll {
    /// Non-overlapping edits against the current text, last in the file
    /// first: applied one after another, each leaves the offsets of the rest
    /// valid; sent together, they form one valid LSP `WorkspaceEdit`.
    pub edits: Vec<Edit>,
    /// The hunks that could not be accepted, in hunk order.
    pub conflicts: Vec<Conflict>,
}

/// The edit that accepts `hunk` in `current`.
pub fn accept(hunk: &Hunk, current: &str) -> Result<Edit, Conflict> {
    let text = SplitText::new(current);
    let lines = &text.lines;
    let range = locate(hunk, &text)?;
    let start = lines[..range.start].iter().map(|line| line.len()).sum();
    Ok(edit(hunk, start, &lines[range]))
}

/// The edits that accept every hunk that still applies to `current`.
pub fn apply_all(hunks: &[Hunk], current: &str) -> AcceptAll {
    let text = SplitText::new(current);
    let lines = &text.lines;
    let mut line_starts = Vec::with_capacity(lines.len() + 1);
    line_starts.push(0);
    for line in lines {
        line_starts.push(line_starts[line_starts.len() - 1] + line.len());
    }

    let mut outcome = AcceptAll::default();
    let mut located: Vec<(Range<usize>, &Hunk)> = Vec::new();
    for hunk in hunks {
        match locate(hunk, &text) {
            Ok(range) => located.push((range, hunk)),
            Err(conflict) => outcome.conflicts.push(conflict),
        }
    }
    // Hunks of one diff never overlap, but the user's edits can make two of
    // them fit the same lines; only the first of those is accepted.
    located.sort_by_key(|(range, _)| (range.start, range.end));
    let mut previous: Option<(Range<usize>, &Hunk)> = None;
    for (range, hunk) in located {
        if let Some((kept, other)) = &previous {
            // Sharing a start also overlaps: an insertion there would go
            // either before or after the other hunk's lines.
            if range.start < kept.end || range.start == kept.start {
                outcome.conflicts.push(Conflict::Overlapping {
                    hunk: hunk.index,
                    base_line: hunk.base_start,
                    other_hunk: other.index,
                    other_base_line: other.base_start,
                });
                continue;
            }
        }
        outcome
            .edits
            .push(edit(hunk, line_starts[range.start], &lines[range.clone()]));
        previous = Some((range, hunk));
    }
    outcome.edits.reverse();
    outcome.conflicts.sort_by_key(Conflict::hunk);
    outcome
}

/// `text` with `edit` applied. A range that does not fit the text is clamped
/// into it rather than panicking.
pub fn apply_edit(text: &str, edit: &Edit) -> String {
    let end = floor_char_boundary(text, edit.end);
    let start = floor_char_boundary(text, edit.start.min(end));
    [&text[..start], edit.new_text.as_str(), &text[end..]].concat()
}

fn edit(hunk: &Hunk, start: usize, replaced: &[&str]) -> Edit {
    Edit {
        start,
        end: start + replaced.iter().map(|line| line.len()).sum::<usize>(),
        new_text: hunk.new_lines.concat(),
    }
}

fn floor_char_boundary(text: &str, offset: usize) -> usize {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::super::hunks::compute_hunks;
    use super::*;

    /// `current` after accepting hunk `index`, or `conflict` if it does not apply.
    fn accepted(base: &str, result: &str, current: &str, index: usize) -> String {
        let hunks = compute_hunks(base, result);
        match accept(&hunks[index], current) {
            Ok(edit) => apply_edit(current, &edit),
            Err(_) => "conflict".to_string(),
        }
    }

    #[test]
    fn accepts_one_hunk() {
        // (case, base, result, current, hunk, current after accepting)
        let cases: &[(&str, &str, &str, &str, usize, &str)] = &[
            (
                "untouched",
                "a\nb\nc\n",
                "a\nB\nc\n",
                "a\nb\nc\n",
                0,
                "a\nB\nc\n",
            ),
            (
                "shifted",
                "a\nb\nc\n",
                "a\nB\nc\n",
                "u\na\nb\nc\n",
                0,
                "u\na\nB\nc\n",
            ),
            (
                "user's edit elsewhere kept",
                "a\nb\nc\nd\n",
                "a\nB\nc\nd\n",
                "a\nb\nc\nd, mine\n",
                0,
                "a\nB\nc\nd, mine\n",
            ),
            (
                "hunk edited",
                "a\nb\nc\n",
                "a\nB\nc\n",
                "a\nbb\nc\n",
                0,
                "conflict",
            ),
            (
                "second of two",
                "a\nb\nc\n",
                "A\nb\nC\n",
                "a\nb\nc\n",
                1,
                "a\nb\nC\n",
            ),
            (
                "crlf",
                "a\r\nb\r\nc\r\n",
                "a\r\nB\r\nc\r\n",
                "u\r\na\r\nb\r\nc\r\n",
                0,
                "u\r\na\r\nB\r\nc\r\n",
            ),
            ("no final newline", "a\nb", "a\nB", "a\nb", 0, "a\nB"),
            ("final newline added", "a\nb", "a\nb\n", "a\nb", 0, "a\nb\n"),
            (
                "final newline removed",
                "a\nb\n",
                "a\nb",
                "a\nb\n",
                0,
                "a\nb",
            ),
            (
                "pure insertion",
                "a\nb\n",
                "a\nx\ny\nb\n",
                "u\na\nb\n",
                0,
                "u\na\nx\ny\nb\n",
            ),
            (
                "pure deletion",
                "a\nb\nc\n",
                "a\nc\n",
                "u\na\nb\nc\n",
                0,
                "u\na\nc\n",
            ),
            ("file created", "", "a\nb\n", "", 0, "a\nb\n"),
            ("file deleted", "a\nb\n", "", "a\nb\n", 0, ""),
            (
                "emoji, cjk and tabs",
                "\t中\n😀\n",
                "\t中\n😃\t😀\n",
                "新\n\t中\n😀\n",
                0,
                "新\n\t中\n😃\t😀\n",
            ),
        ];
        for &(case, base, result, current, index, expected) in cases {
            assert_eq!(accepted(base, result, current, index), expected, "{case}");
        }
    }

    /// The base with `hunks` spliced in by base line numbers, independently
    /// of `accept`.
    fn splice(base: &str, hunks: &[&Hunk]) -> String {
        let mut lines: Vec<String> = crate::diff::hunks::split_lines(base)
            .iter()
            .map(|l| l.to_string())
            .collect();
        for hunk in hunks.iter().rev() {
            lines.splice(hunk.base_start..hunk.base_end(), hunk.new_lines.clone());
        }
        lines.concat()
    }

    /// Accepting any subset of the hunks one at a time, in file order or in
    /// reverse, each against the buffer the previous ones left, gives the
    /// base with exactly that subset spliced in, below the user's own lines.
    #[test]
    fn remaining_hunks_reanchor_after_accepts() {
        // (case, base, result, lines the user inserted at the top)
        let cases = [
            ("one unchanged line apart", "a\nb\nc\n", "A\nb\nC\n", ""),
            (
                "replace, insert, delete",
                "0\n1\n2\n3\n4\n5\n6\n",
                "0\nX\n2\n3\nnew\n4\n6\n",
                "user\n",
            ),
            ("neighbours", "a\nb\nc\nd\ne\n", "A\nb\nC\nd\nE\n", "user\n"),
            (
                "crlf",
                "a\r\nb\r\nc\r\nd\r\n",
                "a\r\nB\r\nc\r\nd\r\nx\r\n",
                "user\r\n",
            ),
            ("no final newline", "a\nb\nc", "A\nb\nC", "user\n"),
            ("file created", "", "a\nb\n", ""),
            ("file deleted", "a\nb\n", "", ""),
            ("emoji and cjk", "中\n😀\nx\n", "中\n😃\nx\n文\n", "user\n"),
        ];
        for (case, base, result, user) in cases {
            let hunks = compute_hunks(base, result);
            for subset in 0..1u32 << hunks.len() {
                let chosen: Vec<&Hunk> = hunks
                    .iter()
                    .filter(|hunk| subset & (1 << hunk.index) != 0)
                    .collect();
                let expected = format!("{user}{}", splice(base, &chosen));
                let orders = [chosen.clone(), chosen.iter().rev().copied().collect()];
                for order in orders {
                    let mut text = format!("{user}{base}");
                    for hunk in &order {
                        let edit = accept(hunk, &text).unwrap_or_else(|conflict| {
                            panic!("{case}: hunk {} in {text:?}: {conflict}", hunk.index)
                        });
                        text = apply_edit(&text, &edit);
                    }
                    assert_eq!(text, expected, "{case}: subset {subset:b}");
                }
            }
        }
    }

    /// `current` after applying the edits in order, and the conflicting hunks.
    fn render_all(outcome: &AcceptAll, current: &str) -> (String, String) {
        let text = outcome
            .edits
            .iter()
            .fold(current.to_string(), |text, edit| apply_edit(&text, edit));
        let conflicts: Vec<_> = outcome
            .conflicts
            .iter()
            .map(|c| c.hunk().to_string())
            .collect();
        (text, conflicts.join(" "))
    }

    #[test]
    fn accepts_all() {
        // (case, base, result, current, current after, hunks in conflict)
        let cases: &[(&str, &str, &str, &str, &str, &str)] = &[
            (
                "all apply",
                "a\nb\nc\nd\ne\n",
                "A\nb\nc\nd\nE\nf\n",
                "u\na\nb\nc\nd\ne\n",
                "u\nA\nb\nc\nd\nE\nf\n",
                "",
            ),
            (
                "one edited by the user",
                "a\nb\nc\nd\ne\n",
                "A\nb\nC\nd\nE\n",
                "a\nb\nc!\nd\ne\n",
                "A\nb\nc!\nd\nE\n",
                "1",
            ),
            (
                "all edited",
                "a\nb\nc\n",
                "A\nb\nC\n",
                "x\nb\ny\n",
                "x\nb\ny\n",
                "0 1",
            ),
            (
                "crlf, no final newline",
                "a\r\nb\r\nc",
                "A\r\nb\r\nC",
                "a\r\nb\r\nc",
                "A\r\nb\r\nC",
                "",
            ),
            ("file created", "", "a\n", "", "a\n", ""),
            ("nothing to do", "a\n", "a\n", "a\n", "a\n", ""),
        ];
        for &(case, base, result, current, expected_text, expected_conflicts) in cases {
            let outcome = apply_all(&compute_hunks(base, result), current);
            let (text, conflicts) = render_all(&outcome, current);
            assert_eq!(text, expected_text, "{case}");
            assert_eq!(conflicts, expected_conflicts, "{case}");
            let descending = outcome.edits.windows(2).all(|w| w[1].end <= w[0].start);
            assert!(descending, "{case}: {:?}", outcome.edits);
        }
    }

    /// Two hunks that fit the same lines: the first is accepted, the second
    /// reported.
    #[test]
    fn overlapping_hunks_conflict() {
        let first = compute_hunks("x\n", "y\n").remove(0);
        let second = Hunk {
            index: 1,
            ..compute_hunks("x\n", "z\n").remove(0)
        };
        let outcome = apply_all(&[first, second], "x\n");
        assert_eq!(
            render_all(&outcome, "x\n"),
            ("y\n".to_string(), "1".to_string())
        );
        assert!(matches!(
            outcome.conflicts[0],
            Conflict::Overlapping { other_hunk: 0, .. }
        ));
    }

    #[test]
    fn apply_edit_clamps() {
        // (text, start, end, new text, expected)
        let cases = [
            ("abc", 1, 2, "X", "aXc"),
            ("abc", 3, 3, "d", "abcd"),
            ("abc", 2, 99, "", "ab"),
            ("abc", 5, 1, "X", "aXbc"),
            ("a😀b", 2, 5, "X", "aXb"),
        ];
        for (text, start, end, new_text, expected) in cases {
            let edit = Edit {
                start,
                end,
                new_text: new_text.to_string(),
            };
            assert_eq!(apply_edit(text, &edit), expected, "{edit:?} on {text:?}");
        }
    }

    /// Accepting in a 10 000-line file: the speed itself is measured by `cargo bench
    /// --bench diff_apply` (far below a frame in release). The bound here only
    /// catches a search gone quadratic (seconds), never a busy machine: debug builds
    /// on a loaded CI machine took 60 ms where an idle one takes 10.
    #[test]
    fn fast_in_long_files() {
        let numbered: String = (0..10_000).map(|i| format!("line {i}\n")).collect();
        let numbered_result = numbered
            .replace("line 5000\n", "changed 5000\n")
            .replace("line 9000\n", "changed 9000\n");
        let braces = "}\n".repeat(10_000);
        let braces_result = "}\n".repeat(5_000) + &"};\n".repeat(1_000) + &"}\n".repeat(4_000);
        // No run of 1 000 braces is left, but every candidate gets close.
        let braces_broken = ("}\n".repeat(998) + "{\n").repeat(11);
        // (case, base, result, current, conflicts)
        let cases = [
            (
                "shifted",
                &numbered,
                &numbered_result,
                "mine\n".repeat(300) + &numbered,
                0,
            ),
            (
                "edited",
                &numbered,
                &numbered_result,
                numbered.replace("line 9000\n", "mine 9000\n"),
                1,
            ),
            (
                "long hunk of braces",
                &braces,
                &braces_result,
                braces_broken,
                1,
            ),
        ];
        for (case, base, result, current, conflicts) in cases {
            let hunks = compute_hunks(base, result);
            let started = Instant::now();
            let outcome = apply_all(&hunks, &current);
            let elapsed = started.elapsed();
            assert_eq!(outcome.conflicts.len(), conflicts, "{case}");
            assert!(elapsed < Duration::from_secs(2), "{case}: took {elapsed:?}");
        }
    }
}
