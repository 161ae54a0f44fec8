//! Deciding what accepting hunks does to the current text, and where each pending
//! hunk stands in it: still to review, already applied, or in conflict.
//!
//! The editor's buffer keeps changing while a decision travels: an editor applies an
//! accepted hunk and reports the change *before* it confirms the edit, a user may type
//! (or paste from the diff) exactly what the agent proposed. So besides "do the base
//! lines still sit here" ([`super::reanchor`]) this asks "do the *proposed* lines sit
//! here": a hunk whose proposed lines are in place has been applied, whatever route
//! they took, and must never be shown as a conflict.
//!
//! Pure: hunks and text in, plans out; the caller records decisions.

use std::collections::BTreeSet;

use super::apply::apply_all;
use super::conflict::Conflict;
use super::hunks::Hunk;
use super::reanchor::{locate, SplitText};
use super::Edit;

/// Which pending hunks of one file the user accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// The hunk with this index.
    One(usize),
    /// Every pending hunk.
    All,
}

/// What to send to the editor to accept the chosen hunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptPlan {
    /// Non-overlapping edits against the current text, last in the file first.
    pub edits: Vec<Edit>,
    /// The hunks the edits accept, in hunk order.
    pub accepted: Vec<usize>,
    /// Chosen hunks that do not apply to the current text; they stay for review.
    pub conflicts: Vec<Conflict>,
}

/// Why nothing can be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("change {0} is not pending any more (accepted, rejected, or being applied)")]
    NotPending(usize),
    #[error("no change is pending")]
    NothingPending,
    /// Every chosen hunk conflicts with the user's edits.
    #[error("{}", .0.iter().map(|c| c.to_string()).collect::<Vec<_>>().join("; "))]
    Conflicts(Vec<Conflict>),
}

/// The edits that accept `choice` among `pending` in `current`.
pub fn plan_accept(
    pending: &[Hunk],
    choice: Choice,
    current: &str,
) -> Result<AcceptPlan, PlanError> {
    let chosen: Vec<Hunk> = match choice {
        Choice::One(index) => vec![pending
            .iter()
            .find(|h| h.index == index)
            .cloned()
            .ok_or(PlanError::NotPending(index))?],
        Choice::All => pending.to_vec(),
    };
    if chosen.is_empty() {
        return Err(PlanError::NothingPending);
    }
    let outcome = apply_all(&chosen, current);
    if outcome.edits.is_empty() {
        return Err(PlanError::Conflicts(outcome.conflicts));
    }
    let conflicting: BTreeSet<usize> = outcome.conflicts.iter().map(Conflict::hunk).collect();
    Ok(AcceptPlan {
        edits: outcome.edits,
        accepted: chosen
            .iter()
            .map(|h| h.index)
            .filter(|i| !conflicting.contains(i))
            .collect(),
        conflicts: outcome.conflicts,
    })
}

/// Where a pending hunk stands in the current text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Its base lines are at `start_line..end_line`: it can be accepted (for a pure
    /// insertion the range is empty, the new lines go before `start_line`).
    Pending { start_line: usize, end_line: usize },
    /// Its proposed lines are at `start_line..end_line`: it has been applied.
    Applied { start_line: usize, end_line: usize },
    /// Neither: the user edited those lines.
    Conflict(Conflict),
}

/// Where each hunk stands in `current`, the text split once for all of them. For a
/// hunk whose accept is in flight (`true` beside it) the proposed lines are looked for
/// first: the editor is expected to have applied it.
pub fn standings<'a>(
    hunks: impl IntoIterator<Item = (&'a Hunk, bool)>,
    current: &str,
) -> Vec<Standing> {
    let text = SplitText::new(current);
    hunks
        .into_iter()
        .map(|(hunk, in_flight)| standing(hunk, in_flight, &text))
        .collect()
}

fn standing(hunk: &Hunk, in_flight: bool, text: &SplitText<'_>) -> Standing {
    let applied = || {
        locate(&proposed(hunk), text)
            .ok()
            .map(|r| Standing::Applied {
                start_line: r.start,
                end_line: r.end,
            })
    };
    if in_flight {
        if let Some(applied) = applied() {
            return applied;
        }
    }
    match locate(hunk, text) {
        Ok(r) => Standing::Pending {
            start_line: r.start,
            end_line: r.end,
        },
        Err(conflict) => applied().unwrap_or(Standing::Conflict(conflict)),
    }
}

/// The hunk seen from the other side: its proposed lines as the lines to find, with
/// the same unchanged context around them.
fn proposed(hunk: &Hunk) -> Hunk {
    Hunk {
        index: hunk.index,
        base_start: hunk.base_start,
        result_start: hunk.base_start,
        base_lines: hunk.new_lines.clone(),
        new_lines: hunk.base_lines.clone(),
        context_before: hunk.context_before.clone(),
        context_after: hunk.context_after.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{apply_edit, compute_hunks};
    use super::*;

    const BASE: &str = "a\nb\nc\nd\ne\nf\ng\nh\n";
    /// Two hunks: `b` → `B1 B2` and `g` deleted.
    const RESULT: &str = "a\nB1\nB2\nc\nd\ne\nf\nh\n";

    fn render(s: &Standing) -> String {
        match s {
            Standing::Pending {
                start_line,
                end_line,
            } => format!("pending {start_line}..{end_line}"),
            Standing::Applied {
                start_line,
                end_line,
            } => format!("applied {start_line}..{end_line}"),
            Standing::Conflict(_) => "conflict".into(),
        }
    }

    #[test]
    fn standings_in_edited_texts() {
        // (case, current text, hunk 0 in flight, standings of hunks 0 and 1)
        let cases: &[(&str, &str, bool, [&str; 2])] = &[
            ("untouched", BASE, false, ["pending 1..2", "pending 6..7"]),
            (
                "first applied by the editor",
                "a\nB1\nB2\nc\nd\ne\nf\ng\nh\n",
                true,
                ["applied 1..3", "pending 7..8"],
            ),
            (
                "first typed by the user, not in flight",
                "a\nB1\nB2\nc\nd\ne\nf\ng\nh\n",
                false,
                ["applied 1..3", "pending 7..8"],
            ),
            (
                "all applied",
                RESULT,
                false,
                ["applied 1..3", "applied 7..7"],
            ),
            (
                "lines above added by the user",
                "u\nu\na\nB1\nB2\nc\nd\ne\nf\ng\nh\n",
                true,
                ["applied 3..5", "pending 9..10"],
            ),
            (
                "first rewritten by the user",
                "a\nmine\nc\nd\ne\nf\ng\nh\n",
                false,
                ["conflict", "pending 6..7"],
            ),
            (
                "in flight, not applied yet",
                BASE,
                true,
                ["pending 1..2", "pending 6..7"],
            ),
        ];
        let hunks = compute_hunks(BASE, RESULT);
        assert_eq!(hunks.len(), 2);
        for &(case, current, first_in_flight, expected) in cases {
            let got: Vec<String> =
                standings([(&hunks[0], first_in_flight), (&hunks[1], false)], current)
                    .iter()
                    .map(render)
                    .collect();
            assert_eq!(got, expected, "{case}");
        }
    }

    #[test]
    fn a_pure_insertion_and_its_result() {
        let base = "a\nb\n";
        let result = "a\nx\nb\n";
        let hunks = compute_hunks(base, result);
        let at = |text: &str| render(&standings([(&hunks[0], false)], text)[0]);
        assert_eq!(at(base), "pending 1..1");
        assert_eq!(at(result), "applied 1..2");
        assert_eq!(at("a\ny\nb\n"), "conflict");
    }

    #[test]
    fn a_created_file_goes_into_an_empty_buffer_and_into_the_lone_line_of_vims_empty_buffer() {
        let hunks = compute_hunks("", "x\ny\n");
        assert_eq!(hunks.len(), 1);
        // Vim and Neovim cannot hold an empty buffer: a new file is one empty line,
        // sent as a line ending. That line is the empty file, not the user's edit.
        for (current, standing) in [
            ("", "pending 0..0"),
            ("\n", "pending 0..1"),
            ("\r\n", "pending 0..1"),
        ] {
            assert_eq!(
                render(&standings([(&hunks[0], false)], current)[0]),
                standing,
                "{current:?}"
            );
            let plan = plan_accept(&hunks, Choice::All, current).unwrap();
            assert_eq!(plan.accepted, vec![0], "{current:?}");
            let mut text = current.to_string();
            for e in &plan.edits {
                text = apply_edit(&text, e);
            }
            assert_eq!(text, "x\ny\n", "{current:?}");
        }
        assert_eq!(
            render(&standings([(&hunks[0], false)], "x\ny\n")[0]),
            "applied 0..2"
        );
        // Anything else in the buffer is the user's.
        assert_eq!(
            render(&standings([(&hunks[0], false)], "mine\n")[0]),
            "conflict"
        );
        assert_eq!(
            render(&standings([(&hunks[0], false)], "\n\n")[0]),
            "conflict"
        );
    }

    #[test]
    fn plans() {
        let hunks = compute_hunks(BASE, RESULT);
        // (case, pending hunks, choice, current text, text after the edits, accepted, conflicts)
        type Case<'a> = (
            &'a str,
            Vec<Hunk>,
            Choice,
            &'a str,
            Result<(&'a str, Vec<usize>, usize), PlanError>,
        );
        let edited = "a\nmine\nc\nd\ne\nf\ng\nh\n";
        let cases: Vec<Case> = vec![
            (
                "one",
                hunks.clone(),
                Choice::One(0),
                BASE,
                Ok(("a\nB1\nB2\nc\nd\ne\nf\ng\nh\n", vec![0], 0)),
            ),
            (
                "all",
                hunks.clone(),
                Choice::All,
                BASE,
                Ok((RESULT, vec![0, 1], 0)),
            ),
            (
                "all, one in conflict",
                hunks.clone(),
                Choice::All,
                edited,
                Ok(("a\nmine\nc\nd\ne\nf\nh\n", vec![1], 1)),
            ),
            (
                "decided already",
                vec![hunks[1].clone()],
                Choice::One(0),
                BASE,
                Err(PlanError::NotPending(0)),
            ),
            (
                "nothing pending",
                vec![],
                Choice::All,
                BASE,
                Err(PlanError::NothingPending),
            ),
        ];
        for (case, pending, choice, current, expected) in cases {
            let got = plan_accept(&pending, choice, current).map(|plan| {
                let text = plan
                    .edits
                    .iter()
                    .fold(current.to_string(), |t, e| apply_edit(&t, e));
                (text, plan.accepted, plan.conflicts.len())
            });
            let expected = expected.map(|(t, a, c)| (t.to_string(), a, c));
            assert_eq!(got, expected, "{case}");
        }
        let only_conflict = plan_accept(&hunks, Choice::One(0), edited);
        assert!(
            matches!(&only_conflict, Err(PlanError::Conflicts(c)) if c.len() == 1),
            "{only_conflict:?}"
        );
        assert!(only_conflict
            .unwrap_err()
            .to_string()
            .contains("you edited those lines"));
    }
}
