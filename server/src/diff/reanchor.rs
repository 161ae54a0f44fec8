//! Finding a hunk again in a buffer that the user kept editing while the agent
//! worked.
//!
//! A hunk was computed against the base text; the buffer now differs from it
//! by the user's edits and by the hunks already accepted. The hunk still
//! applies when its base lines appear unchanged in the buffer: the search
//! starts at the hunk's base line and moves outward one line at a time, at
//! most `SEARCH_RADIUS` lines each way, and stops at the first candidate whose
//! context matches fully.
//!
//! Where the base lines appear more than once, the context lines decide:
//! the candidate with the most matching context wins, then the nearest one.
//! At its original line the base lines alone are enough; anywhere else at
//! least one neighbouring line must agree too, or a stray copy of a line like
//! `}` far away would be taken for the hunk. A pure insertion has no base
//! lines, so its two neighbours (or the file edge) must both agree.
//!
//! Lines compare exactly, terminators included: if the user switched the file
//! from LF to CRLF, accepting the agent's LF lines would mix line endings, so
//! the hunk is reported as a conflict instead.

use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::ops::Range;

use super::conflict::Conflict;
use super::hunks::{split_lines, Hunk};

/// How far from its base line a hunk is looked for, in lines each way. It
/// bounds the work in very long files; a hunk that the user's own edits moved
/// further than this is reported as a conflict.
pub(super) const SEARCH_RADIUS: usize = 5_000;

/// Where a hunk applies in the current text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Anchor {
    /// Lines `start_line..end_line` of the current text are exactly the hunk's
    /// base lines. For a pure insertion the range is empty and the new lines
    /// go before `start_line`.
    Applies {
        start_line: usize,
        end_line: usize,
    },
    Conflict {
        reason: Conflict,
    },
}

/// Where `hunk` applies in `current`.
pub fn reanchor(hunk: &Hunk, current: &str) -> Anchor {
    anchor_in(hunk, &SplitText::new(current))
}

/// Places several hunks in the same text, splitting it into lines only once: what
/// an editor needs for every pending hunk of a document.
pub fn reanchor_many<'a>(hunks: impl IntoIterator<Item = &'a Hunk>, current: &str) -> Vec<Anchor> {
    let text = SplitText::new(current);
    hunks.into_iter().map(|h| anchor_in(h, &text)).collect()
}

fn anchor_in(hunk: &Hunk, text: &SplitText<'_>) -> Anchor {
    match locate(hunk, text) {
        Ok(range) => Anchor::Applies {
            start_line: range.start,
            end_line: range.end,
        },
        Err(reason) => Anchor::Conflict { reason },
    }
}

/// The range of `lines` holding exactly the hunk's base lines.
pub(super) fn locate(hunk: &Hunk, text: &SplitText<'_>) -> Result<Range<usize>, Conflict> {
    let lines = text.lines.as_slice();
    // A file the task created, in an editor that cannot hold an empty buffer: Vim and
    // Neovim show a new file as one empty line and send it as a line ending. That line
    // is the empty file; the hunk replaces it.
    if hunk.creates_file() && matches!(lines, ["\n" | "\r\n"]) {
        return Ok(0..1);
    }
    let len = hunk.base_lines.len();
    let Some(last_start) = lines.len().checked_sub(len) else {
        return Err(not_found(hunk));
    };
    let origin = hunk.base_start.min(last_start);
    let max_score = side_max(&hunk.context_before) + side_max(&hunk.context_after);
    let base_lines = BaseLines::new(hunk, text);

    let mut best: Option<Candidate> = None;
    for distance in 0..=SEARCH_RADIUS {
        let above = origin.checked_sub(distance);
        let below = Some(origin + distance).filter(|&start| distance > 0 && start <= last_start);
        if above.is_none() && below.is_none() {
            break;
        }
        for start in above.into_iter().chain(below) {
            // The context is at most a few lines, the base lines may be
            // thousands: look at them only for a candidate that would count.
            let Some(score) = context_score(hunk, lines, start, distance) else {
                continue;
            };
            let counts = match &best {
                None => true,
                // Searching outward, an equal score is at the same or a
                // greater distance: only the former is a tie.
                Some(best) => {
                    score > best.score
                        || (score == best.score
                            && distance == best.distance
                            && best.tied_with.is_none())
                }
            };
            if !counts || !base_lines.sit_at(start) {
                continue;
            }
            match &mut best {
                Some(best) if score == best.score => best.tied_with = Some(start),
                _ => {
                    best = Some(Candidate {
                        start,
                        score,
                        distance,
                        tied_with: None,
                    })
                }
            }
        }
        // Nothing further out can beat a full match.
        if best.as_ref().is_some_and(|best| best.score == max_score) {
            break;
        }
    }

    match best {
        None => Err(not_found(hunk)),
        Some(Candidate {
            start,
            tied_with: Some(other),
            ..
        }) => Err(Conflict::Ambiguous {
            hunk: hunk.index,
            base_line: hunk.base_start,
            candidates: [start.min(other), start.max(other)],
        }),
        Some(Candidate { start, .. }) => Ok(start..start + len),
    }
}

struct Candidate {
    start: usize,
    score: usize,
    distance: usize,
    tied_with: Option<usize>,
}

/// How well the context fits around the hunk placed at `start`: the number of
/// context lines that match outward from it, or `None` if that is too few.
fn context_score(hunk: &Hunk, lines: &[&str], start: usize, distance: usize) -> Option<usize> {
    let end = start + hunk.base_lines.len();
    let before = matching_before(&hunk.context_before, &lines[..start]);
    let after = matching_after(&hunk.context_after, &lines[end..]);
    let fits = if hunk.is_insertion() {
        before > 0 && after > 0
    } else {
        distance == 0 || before + after > 0
    };
    fits.then_some(before + after)
}

/// Tells whether the hunk's base lines sit at a given line, in constant time
/// for a mismatch: a window of line hashes is compared before the lines.
/// Comparing lines alone costs the hunk's length at every candidate in a
/// file of near-identical lines (generated data, closing braces), which for
/// a long hunk is quadratic.
/// A text split into lines, with prefix hashes of its lines so that any window of
/// lines compares with a hunk's base lines in constant time. Built once per text and
/// shared by every hunk placed in it: hashing the lines is the expensive part.
pub(super) struct SplitText<'a> {
    pub(super) lines: Vec<&'a str>,
    /// `prefix[i]` hashes `lines[..i]`; a window's hash follows from two.
    prefix: Vec<u64>,
}

impl<'a> SplitText<'a> {
    pub(super) fn new(text: &'a str) -> SplitText<'a> {
        let lines = split_lines(text);
        let hasher = BuildHasherDefault::<DefaultHasher>::default();
        let mut prefix = Vec::with_capacity(lines.len() + 1);
        prefix.push(0);
        for line in &lines {
            let previous = prefix[prefix.len() - 1];
            prefix.push(chain(previous, hasher.hash_one(line)));
        }
        SplitText { lines, prefix }
    }
}

struct BaseLines<'a> {
    hunk: &'a Hunk,
    text: &'a SplitText<'a>,
    /// `HASH_BASE` to the power of the hunk's length, to cut windows.
    power: u64,
    hash: u64,
}

/// Odd, so that its powers never vanish modulo 2^64.
const HASH_BASE: u64 = 0x0000_0100_0000_01b3;

impl<'a> BaseLines<'a> {
    fn new(hunk: &'a Hunk, text: &'a SplitText<'a>) -> BaseLines<'a> {
        let hasher = BuildHasherDefault::<DefaultHasher>::default();
        let hash = hunk
            .base_lines
            .iter()
            .fold(0, |hash, line| chain(hash, hasher.hash_one(line.as_str())));
        // Truncating the length is harmless: both sides use the same power.
        let power = HASH_BASE.wrapping_pow(hunk.base_lines.len() as u32);
        BaseLines {
            hunk,
            text,
            power,
            hash,
        }
    }

    fn sit_at(&self, start: usize) -> bool {
        let end = start + self.hunk.base_lines.len();
        let prefix = &self.text.prefix;
        let window = prefix[end].wrapping_sub(prefix[start].wrapping_mul(self.power));
        window == self.hash
            && self.text.lines[start..end]
                .iter()
                .zip(&self.hunk.base_lines)
                .all(|(line, base)| line == base)
    }
}

fn chain(hash: u64, line_hash: u64) -> u64 {
    hash.wrapping_mul(HASH_BASE).wrapping_add(line_hash)
}

/// Context lines matching just above the hunk, nearest first. No context means
/// the hunk started the base, so the start of the file counts as one line.
fn matching_before(context: &[String], above: &[&str]) -> usize {
    if context.is_empty() {
        return usize::from(above.is_empty());
    }
    context
        .iter()
        .rev()
        .zip(above.iter().rev())
        .take_while(|(context, line)| context == *line)
        .count()
}

/// Context lines matching just below the hunk; the end of the file counts as
/// one line when the hunk ended the base.
fn matching_after(context: &[String], below: &[&str]) -> usize {
    if context.is_empty() {
        return usize::from(below.is_empty());
    }
    context
        .iter()
        .zip(below)
        .take_while(|(context, line)| context == *line)
        .count()
}

fn side_max(context: &[String]) -> usize {
    context.len().max(1)
}

fn not_found(hunk: &Hunk) -> Conflict {
    if hunk.is_insertion() {
        Conflict::SurroundingsEdited {
            hunk: hunk.index,
            base_line: hunk.base_start,
        }
    } else {
        Conflict::LinesEdited {
            hunk: hunk.index,
            base_line: hunk.base_start,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::hunks::compute_hunks;
    use super::*;

    fn render(anchor: &Anchor) -> String {
        match anchor {
            Anchor::Applies {
                start_line,
                end_line,
            } => format!("{start_line}..{end_line}"),
            Anchor::Conflict {
                reason: Conflict::LinesEdited { .. },
            } => "edited".to_string(),
            Anchor::Conflict {
                reason: Conflict::SurroundingsEdited { .. },
            } => "surroundings edited".to_string(),
            Anchor::Conflict {
                reason: Conflict::Ambiguous { candidates, .. },
            } => format!("ambiguous {} {}", candidates[0], candidates[1]),
            Anchor::Conflict { reason } => format!("{reason:?}"),
        }
    }

    /// Anchors of every hunk from `base` to `result`, in `current`.
    fn check(case: &str, base: &str, result: &str, current: &str, expected: &[&str]) {
        let actual: Vec<_> = compute_hunks(base, result)
            .iter()
            .map(|hunk| render(&reanchor(hunk, current)))
            .collect();
        assert_eq!(actual, expected, "{case}");
    }

    #[test]
    fn changed_lines() {
        // (case, base, result, current, anchors)
        let cases: &[(&str, &str, &str, &str, &[&str])] = &[
            (
                "untouched",
                "a\nb\nc\n",
                "a\nB\nc\n",
                "a\nb\nc\n",
                &["1..2"],
            ),
            (
                "lines inserted above",
                "a\nb\nc\n",
                "a\nB\nc\n",
                "x\ny\na\nb\nc\n",
                &["3..4"],
            ),
            (
                "line deleted above",
                "a\nb\nc\nd\n",
                "a\nb\nc\nD\n",
                "b\nc\nd\n",
                &["2..3"],
            ),
            (
                "lines inserted below",
                "a\nb\nc\n",
                "a\nB\nc\n",
                "a\nb\nc\nx\n",
                &["1..2"],
            ),
            (
                "hunk edited",
                "a\nb\nc\n",
                "a\nB\nc\n",
                "a\nb!\nc\n",
                &["edited"],
            ),
            (
                "hunk deleted",
                "a\nb\nc\n",
                "a\nB\nc\n",
                "a\nc\n",
                &["edited"],
            ),
            (
                "context edited, hunk intact",
                "a\nb\nc\n",
                "a\nB\nc\n",
                "a!\nb\nc!\n",
                &["1..2"],
            ),
            (
                "one of two hunks edited",
                "a\nb\nc\n",
                "A\nb\nC\n",
                "a!\nb\nc\n",
                &["edited", "2..3"],
            ),
            (
                "pure deletion shifted",
                "a\nb\nc\n",
                "a\nc\n",
                "z\na\nb\nc\n",
                &["2..3"],
            ),
            ("file deleted", "a\nb\n", "", "a\nb\n", &["0..2"]),
            (
                "crlf shifted",
                "a\r\nb\r\nc\r\n",
                "a\r\nB\r\nc\r\n",
                "x\r\na\r\nb\r\nc\r\n",
                &["2..3"],
            ),
            (
                "crlf turned into lf",
                "a\r\nb\r\nc\r\n",
                "a\r\nB\r\nc\r\n",
                "a\nb\nc\n",
                &["edited"],
            ),
            (
                "no final newline shifted",
                "a\nb",
                "a\nB",
                "x\na\nb",
                &["2..3"],
            ),
            (
                "final newline added by user",
                "a\nb",
                "a\nB",
                "a\nb\n",
                &["edited"],
            ),
            (
                "emoji and cjk shifted",
                "中\n😀\n",
                "中\n😃\n",
                "新\n中\n😀\n",
                &["2..3"],
            ),
        ];
        for &(case, base, result, current, expected) in cases {
            check(case, base, result, current, expected);
        }
    }

    #[test]
    fn repeated_lines() {
        let cases: &[(&str, &str, &str, &str, &[&str])] = &[
            (
                "context picks the right brace",
                "fn a() {\n}\nfn b() {\n}\n",
                "fn a() {\n}\nfn b() {\n};\n",
                "// c\nfn a() {\n}\nfn b() {\n}\n",
                &["4..5"],
            ),
            (
                "stray copy without matching neighbours",
                "a\nb\nc\n",
                "a\nB\nc\n",
                "q\nq\nb\n",
                &["edited"],
            ),
            (
                "fuller context beats nearer",
                "x\nb\ny\n",
                "x\nB\ny\n",
                "x\nb\nq\nq\nq\nx\nb\ny\n",
                &["6..7"],
            ),
            (
                "nearest of equal fits",
                "0\nx\nb\ny\n",
                "0\nx\nB\ny\n",
                "x\nb\ny\nq\nq\nx\nb\ny\n",
                &["1..2"],
            ),
            (
                "equal fits at equal distance",
                "0\n1\n2\n3\nx\ny\nz\n",
                "0\n1\n2\n3\nx\nY\nz\n",
                "a\na\nx\ny\nz\nw\nx\ny\nz\n",
                &["ambiguous 3 7"],
            ),
        ];
        for &(case, base, result, current, expected) in cases {
            check(case, base, result, current, expected);
        }
    }

    #[test]
    fn insertions() {
        let cases: &[(&str, &str, &str, &str, &[&str])] = &[
            ("untouched", "a\nb\n", "a\nx\nb\n", "a\nb\n", &["1..1"]),
            ("shifted", "a\nb\n", "a\nx\nb\n", "new\na\nb\n", &["2..2"]),
            (
                "far neighbour edited",
                "a\nb\nc\nd\n",
                "a\nb\nx\nc\nd\n",
                "a!\nb\nc\nd\n",
                &["2..2"],
            ),
            (
                "next line edited",
                "a\nb\n",
                "a\nx\nb\n",
                "a\nB\n",
                &["surroundings edited"],
            ),
            (
                "line typed at the insertion point",
                "a\nb\n",
                "a\nx\nb\n",
                "a\nmine\nb\n",
                &["surroundings edited"],
            ),
            ("at start", "a\n", "x\na\n", "a\n", &["0..0"]),
            (
                "at start, line added above",
                "a\n",
                "x\na\n",
                "u\na\n",
                &["surroundings edited"],
            ),
            ("at end", "a\n", "a\nx\n", "u\na\n", &["2..2"]),
            (
                "at end, line appended",
                "a\n",
                "a\nx\n",
                "a\ny\n",
                &["surroundings edited"],
            ),
            ("file created", "", "a\nb\n", "", &["0..0"]),
            (
                "file created, user typed",
                "",
                "a\nb\n",
                "hello\n",
                &["surroundings edited"],
            ),
            (
                "crlf",
                "a\r\nb\r\n",
                "a\r\nx\r\nb\r\n",
                "u\r\na\r\nb\r\n",
                &["2..2"],
            ),
        ];
        for &(case, base, result, current, expected) in cases {
            check(case, base, result, current, expected);
        }
    }

    /// Accepting one hunk leaves its neighbours' context intact.
    #[test]
    fn neighbours_of_an_accepted_hunk() {
        let cases: &[(&str, &str, &str, &str, &[&str])] = &[
            (
                "first accepted",
                "a\nb\nc\n",
                "A\nA2\nb\nC\n",
                "A\nA2\nb\nc\n",
                &["edited", "3..4"],
            ),
            (
                "insertion next to accepted change",
                "a\nb\nc\n",
                "a\nx\nb\nC\n",
                "a\nb\nC\n",
                &["1..1", "edited"],
            ),
        ];
        for &(case, base, result, current, expected) in cases {
            check(case, base, result, current, expected);
        }
    }

    #[test]
    fn search_is_bounded() {
        let base = "a\nb\nc\n";
        let hunk = &compute_hunks(base, "a\nB\nc\n")[0];
        // (lines the user inserted above, anchor)
        let cases = [
            (
                SEARCH_RADIUS - 1,
                format!("{}..{}", SEARCH_RADIUS, SEARCH_RADIUS + 1),
            ),
            (SEARCH_RADIUS + 1, "edited".to_string()),
        ];
        for (inserted, expected) in cases {
            let current = "u\n".repeat(inserted) + base;
            assert_eq!(render(&reanchor(hunk, &current)), expected, "{inserted}");
        }
    }

    #[test]
    fn reanchor_many_agrees_with_reanchor() {
        let base = "a\nb\nc\nd\ne\nf\ng\n";
        let result = "a\nB\nc\nd\ne\nF\ng\n";
        let current = "new\na\nb\nc\nd\ne\nf\ng\n";
        let hunks = crate::diff::compute_hunks(base, result);
        let one_by_one: Vec<Anchor> = hunks.iter().map(|h| reanchor(h, current)).collect();
        assert_eq!(reanchor_many(&hunks, current), one_by_one);
        assert_eq!(one_by_one.len(), 2);
    }
}
