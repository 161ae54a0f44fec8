//! Every word the language server shows about tasks, in one place: state glyphs,
//! durations, "N files changed", status lines, hunk hints, messages and the titles of
//! code actions and lenses. Clients read structured data (`data` of a diagnostic,
//! task records), never these words, so they can change freely.
//!
//! Durations read `42s`, `1m32s`, `2h05m`, like the VS Code extension's
//! (`editors/vscode/src/model.ts`); both are tested against the same table,
//! `editors/vscode/src/test/durations.json`.

use std::fmt::Write;

use crate::diff::{Conflict, Hunk};
use crate::engine::task::{Task, TaskId, TaskState};

/// Diagnostic messages show at most this many lines of a hunk.
const MAX_MESSAGE_LINES: usize = 30;
/// A task title in a one-line hint is cut to this many characters.
const MAX_TITLE_CHARS: usize = 40;
/// The sample of a change in a one-line hint is cut to this many characters.
const MAX_SAMPLE_CHARS: usize = 60;

/// The state as one character: `…` queued, `⟳` working, `✓` done, `✗` failed,
/// `⊘` cancelled.
pub fn glyph(state: TaskState) -> &'static str {
    match state {
        TaskState::Queued => "…",
        TaskState::Starting | TaskState::Running | TaskState::Finalizing => "⟳",
        TaskState::Done => "✓",
        TaskState::Failed => "✗",
        TaskState::Cancelled => "⊘",
    }
}

/// `42s`, `1m32s`, `2h05m`.
pub fn duration(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// How long the agent has run (or ran); `None` before it started.
pub fn elapsed(task: &Task) -> Option<String> {
    task.elapsed_secs().map(|s| duration(s.max(0) as u64))
}

/// `1 file changed`, `3 files changed`.
pub fn files_changed(n: usize) -> String {
    format!("{n} file{} changed", if n == 1 { "" } else { "s" })
}

fn lines(n: usize) -> String {
    format!("{n} line{}", if n == 1 { "" } else { "s" })
}

/// `Handoff #3`.
pub fn name(id: TaskId) -> String {
    format!("Handoff #{id}")
}

/// One line of state, as a lens or progress shows it: `⟳ Handoff #12 running 1m32s`,
/// `✓ Handoff #12 done · 2 files changed`.
pub fn status(task: &Task) -> String {
    let head = format!("{} {} {}", glyph(task.state), name(task.id), task.state);
    match task.state {
        TaskState::Starting | TaskState::Running | TaskState::Finalizing => match elapsed(task) {
            Some(e) => format!("{head} {e}"),
            None => head,
        },
        TaskState::Done => format!("{head} · {}", files_changed(task.files_changed.len())),
        _ => head,
    }
}

/// The title of a progress: `Handoff #3: greet loudly`.
pub fn progress_title(task: &Task) -> String {
    format!("{}: {}", name(task.id), task.title)
}

/// What a hunk changes, in a few words: `replaces 2 lines with 1 — return x.upper()`.
pub fn change_summary(hunk: &Hunk) -> String {
    let (old, new) = (hunk.base_lines.len(), hunk.new_lines.len());
    let what = match (old, new) {
        (0, n) => format!("adds {}", lines(n)),
        (o, 0) => format!("deletes {}", lines(o)),
        (o, n) if o == n => format!("replaces {}", lines(o)),
        (o, n) => format!("replaces {} with {n}", lines(o)),
    };
    let sample_from = if new == 0 {
        &hunk.base_lines
    } else {
        &hunk.new_lines
    };
    match sample_from.iter().map(|l| l.trim()).find(|l| !l.is_empty()) {
        Some(sample) => format!("{what} — {}", cut(sample, MAX_SAMPLE_CHARS)),
        None => what,
    }
}

/// The first line of a hunk's hint, all a one-line view (a quickfix list, Flymake)
/// shows: `Handoff #1 (greet loudly): replaces 2 lines with 1 — return x.upper()`.
pub fn hunk_headline(
    task: TaskId,
    title: &str,
    hunk: &Hunk,
    conflict: Option<&Conflict>,
) -> String {
    let who = format!("{} ({})", name(task), cut(title, MAX_TITLE_CHARS));
    match conflict {
        None => format!("{who}: {}", change_summary(hunk)),
        Some(_) => format!(
            "{who}: conflict, you edited these lines (it {}); open the diff to merge by hand",
            change_summary(hunk)
        ),
    }
}

/// The whole hint: the headline, the conflict's reason, then the change as `-`/`+`
/// lines (cut at 30 lines; the diagnostic's `data` holds them all).
pub fn hunk_message(task: TaskId, title: &str, hunk: &Hunk, conflict: Option<&Conflict>) -> String {
    let mut s = hunk_headline(task, title, hunk, conflict);
    if let Some(reason) = conflict {
        let _ = write!(s, "\n{reason}");
    }
    let changed = hunk
        .base_lines
        .iter()
        .map(|l| ('-', l))
        .chain(hunk.new_lines.iter().map(|l| ('+', l)));
    for (i, (sign, line)) in changed.enumerate() {
        if i == MAX_MESSAGE_LINES {
            s.push_str("\n…");
            break;
        }
        let _ = write!(s, "\n{sign} {}", line.trim_end_matches(['\n', '\r']));
    }
    s
}

/// "Handoff #3 done: greet loudly. Review inline in a.rs. Not open: b.rs (…)".
pub fn ended(task: &Task, open_paths: &[String]) -> String {
    let mut s = format!("{}: {}", status(task), task.title);
    if let Some(err) = &task.error {
        let _ = write!(s, " — {err}");
    }
    if let Some(check) = task.check.as_ref().filter(|c| !c.passed) {
        let _ = write!(
            s,
            " — check `{}` FAILED (exit code {}); see the task's log",
            check.command, check.exit_code
        );
    }
    let (shown, not_open): (Vec<&String>, Vec<&String>) = task
        .files_changed
        .iter()
        .partition(|f| open_paths.contains(f));
    let join = |files: &[&String]| {
        files
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !shown.is_empty() {
        let _ = write!(s, ". Review inline in {}", join(&shown));
    }
    if !not_open.is_empty() {
        let _ = write!(
            s,
            ". Not open: {} (use \"Open diff\" on the task's lens, or `handoff diff {}`)",
            join(&not_open),
            task.id
        );
    }
    s
}

/// Said when a task starts to clients that show no progress: what runs, and how to
/// follow it.
pub fn started(task: &Task) -> String {
    let what = match task.state {
        TaskState::Queued => "queued",
        _ => "started",
    };
    format!(
        "{} {what}: {} (agent {}, branch {}). The code actions on the line it was delegated \
         from cancel it or show its log; you are told when it ends.",
        name(task.id),
        task.title,
        task.agent,
        task.branch
    )
}

/// Said to clients that cannot open a file themselves: where it is.
pub fn file_written(what: &str, task: TaskId, path: &str) -> String {
    format!("Handoff: the {what} of task #{task} is in {path}")
}

/// The warning when Docker cannot start what was just queued.
pub fn cannot_start(waiting: &str, error: &str) -> String {
    format!("Handoff: {waiting} but cannot start yet: {error}. It starts once this is fixed.")
}

/// Titles of code actions and lenses.
pub mod titles {
    use super::name;
    use crate::engine::task::{TaskId, TaskState};

    pub const DELEGATE_TODO: &str = "Delegate TODO to background agent";
    pub const DELEGATE_SELECTION: &str = "Delegate selection to background agent…";
    pub const CANCEL: &str = "Cancel";
    pub const OPEN_DIFF: &str = "Open diff";
    pub const REJECT: &str = "Reject";

    pub fn accept_change(task: TaskId) -> String {
        format!("Accept change ({})", name(task))
    }

    pub fn reject_change(task: TaskId) -> String {
        format!("Reject change ({})", name(task))
    }

    pub fn accept_all(task: TaskId) -> String {
        format!("Accept all changes from task #{task}")
    }

    pub fn comment(task: TaskId) -> String {
        format!("Comment on this change (Handoff #{task})…")
    }

    /// Above a hunk with pending comments.
    pub fn comments_lens(task: TaskId, here: usize) -> String {
        format!(
            "💬 {here} comment{} here · Send comments to Handoff #{task}",
            if here == 1 { "" } else { "s" }
        )
    }

    pub fn send_comments(task: TaskId, n: usize) -> String {
        format!(
            "Send {n} comment{} to Handoff #{task}",
            if n == 1 { "" } else { "s" }
        )
    }

    /// The TODO action when a task is already working on that TODO.
    pub fn delegate_todo_again(running: TaskId) -> String {
        format!(
            "{DELEGATE_TODO} again ({} is still running on it)",
            name(running)
        )
    }

    /// The code action that cancels a task: `Handoff #3 running — Cancel`.
    pub fn cancel_task(task: TaskId, state: TaskState) -> String {
        format!("{} {state} — Cancel", name(task))
    }

    pub fn show_log(task: TaskId) -> String {
        format!("{} — Show log", name(task))
    }

    pub fn open_diff(task: TaskId) -> String {
        format!("{} — Open diff", name(task))
    }

    /// The lens above an applicable hunk: `Accept (#3)`.
    pub fn accept_lens(task: TaskId) -> String {
        format!("Accept (#{task})")
    }

    /// The lens above a conflicting hunk.
    pub fn conflict_lens(task: TaskId) -> String {
        format!("⚠ Conflict (#{task}) · Open diff")
    }
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let kept: String = text.chars().take(max - 1).collect();
    format!("{}…", kept.trim_end())
}

/// A pending review comment, as its diagnostic says it.
pub fn comment_message(task: TaskId, text: &str) -> String {
    format!("💬 comment for Handoff #{task} (not sent yet): {text}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::compute_hunks;

    /// The table the VS Code extension's unit tests read too.
    #[test]
    fn durations_as_the_vscode_extension_writes_them() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../editors/vscode/src/test/durations.json"
        );
        let table: Vec<(u64, String)> =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert!(table.len() >= 8);
        for (secs, expected) in table {
            assert_eq!(duration(secs), expected, "{secs} s");
        }
    }

    #[test]
    fn change_summaries() {
        // (base, result, summary of the first hunk)
        let cases = [
            ("a\nb\n", "a\nB\n", "replaces 1 line — B"),
            ("a\nb\nc\n", "a\nX\n", "replaces 2 lines with 1 — X"),
            ("a\n", "a\n\n  new\nmore\n", "adds 3 lines — new"),
            ("a\nold\n", "a\n", "deletes 1 line — old"),
            ("a\n\n\n", "a\n", "deletes 2 lines"),
            (
                "a\n",
                &format!("a\n{}\n", "x".repeat(100)),
                &format!("adds 1 line — {}…", "x".repeat(59)),
            ),
        ];
        for (base, result, expected) in cases {
            let hunks = compute_hunks(base, result);
            assert_eq!(change_summary(&hunks[0]), expected, "{base:?} → {result:?}");
        }
    }

    #[test]
    fn headlines() {
        let hunk = &compute_hunks("a\nb\nc\n", "a\nX\n")[0];
        assert_eq!(
            hunk_headline(TaskId(3), "greet loudly", hunk, None),
            "Handoff #3 (greet loudly): replaces 2 lines with 1 — X"
        );
        let conflict = Conflict::LinesEdited {
            hunk: 0,
            base_line: 1,
        };
        let long = "a very long title that goes on and on about what to do";
        let message = hunk_message(TaskId(3), long, hunk, Some(&conflict));
        let mut lines = message.lines();
        assert_eq!(
            lines.next().unwrap(),
            "Handoff #3 (a very long title that goes on and on a…): conflict, you edited these \
             lines (it replaces 2 lines with 1 — X); open the diff to merge by hand"
        );
        assert!(lines.next().unwrap().contains("you edited those lines"));
        assert_eq!(lines.collect::<Vec<_>>(), ["- b", "- c", "+ X"]);
    }
}
