//! The task record and its state machine.
//!
//! A task is persisted as one JSON document; this module owns its shape and the only
//! function that decides which state changes are allowed. It does no I/O.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use super::claim::Claim;
pub use crate::egress::Blocked;
pub use crate::git::import::Skipped;

/// A task's number within its repository: `#12`, `handoff show 12`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskId(pub u64);

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad` so that width and alignment in format strings apply.
        f.pad(&self.0.to_string())
    }
}

impl FromStr for TaskId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = s.strip_prefix('#').unwrap_or(s);
        digits
            .parse::<u64>()
            .map(TaskId)
            .map_err(|_| format!("`{s}` is not a task id; ids are numbers, see `handoff list`"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    /// Snapshot taken, waiting for a free slot.
    Queued,
    /// Workspace being prepared and container being created.
    Starting,
    /// The agent's container runs.
    Running,
    /// The agent has ended; its work is being committed and imported.
    Finalizing,
    Done,
    Failed,
    Cancelled,
}

impl TaskState {
    /// The state as one character, wherever a task is shown: `…` queued, `⟳`
    /// working, `✓` done, `✗` failed, `⊘` cancelled.
    pub fn glyph(self) -> &'static str {
        match self {
            TaskState::Queued => "…",
            TaskState::Starting | TaskState::Running | TaskState::Finalizing => "⟳",
            TaskState::Done => "✓",
            TaskState::Failed => "✗",
            TaskState::Cancelled => "⊘",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskState::Done | TaskState::Failed | TaskState::Cancelled
        )
    }

    /// States that hold (or may hold) a container and so count against `max_parallel`.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            TaskState::Starting | TaskState::Running | TaskState::Finalizing
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Queued => "queued",
            TaskState::Starting => "starting",
            TaskState::Running => "running",
            TaskState::Finalizing => "finalizing",
            TaskState::Done => "done",
            TaskState::Failed => "failed",
            TaskState::Cancelled => "cancelled",
        }
    }

    /// The one place that says which state changes are allowed.
    pub fn can_move_to(self, next: TaskState) -> bool {
        use TaskState::*;
        matches!(
            (self, next),
            (Queued, Starting)
                | (Queued, Cancelled)
                // A front-end died while starting: the task goes back to the queue.
                | (Starting, Queued)
                | (Starting, Running)
                | (Starting, Failed)
                | (Starting, Finalizing)
                | (Running, Finalizing)
                | (Finalizing, Done)
                | (Finalizing, Failed)
                | (Finalizing, Cancelled)
                // A follow-up (`handoff reply`) starts another turn on the same branch.
                | (Done, Queued)
                | (Failed, Queued)
                | (Cancelled, Queued)
        )
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where in the editor a task was delegated from, so front-ends can show it there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// Repository-relative path.
    pub path: String,
    /// 0-based line.
    pub line: u32,
}

/// The persisted record of one task. Field names are a public contract
/// (`handoff list --json`), so only add fields, never rename them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub id: TaskId,
    pub state: TaskState,
    pub agent: String,
    pub prompt: String,
    /// Short one-line summary of the prompt, for lists and the branch name.
    pub title: String,
    pub branch: String,
    /// The snapshot commit the agent started from.
    pub base_commit: String,
    /// The last commit of the task branch, once finalized.
    pub head_commit: Option<String>,
    /// Repository-relative paths changed between base and head.
    pub files_changed: Vec<String>,
    /// Why the task failed or was cancelled, in words.
    pub error: Option<String>,
    pub image: String,
    /// The content id (`sha256:…`) `image` had on the engine when the task first
    /// started: every later container of the task (setup, agent, follow-ups) is made
    /// from it, so a tag moved meanwhile (a rebuild, a load, a pull) is never used.
    #[serde(default)]
    pub image_id: Option<String>,
    pub container_id: Option<String>,
    pub exit_code: Option<i64>,
    pub oom_killed: bool,
    pub cancel_requested: bool,
    /// Names (never values) of the environment variables passed to the agent.
    pub env_names: Vec<String>,
    pub origin: Option<Origin>,
    /// Milliseconds spent in each phase Handoff controls: `snapshot`, `workspace`,
    /// `container` (create and start), `finalize`. For benchmarks and `show`.
    #[serde(default)]
    pub phases_ms: std::collections::BTreeMap<String, u64>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The turns that have ended, oldest first; the first is the task's prompt, the
    /// others are follow-ups (`handoff reply`).
    #[serde(default)]
    pub turns: Vec<Turn>,
    /// The follow-up the current turn runs; `None` in the first turn.
    #[serde(default)]
    pub reply: Option<String>,
    /// Follow-ups sent while a turn ran, delivered together when it ends.
    #[serde(default)]
    pub pending_replies: Vec<String>,
    /// The agent's session (Claude Code `session_id`, Codex `thread_id`) as the last
    /// turn reported it: what a follow-up resumes and `handoff pull` hands over.
    #[serde(default)]
    pub session_id: Option<String>,
    /// The last run of the configured check (`check = …`), if any.
    #[serde(default)]
    pub check: Option<CheckRun>,
    /// Follow-up turns started to repair a failing check.
    #[serde(default)]
    pub check_repairs: u32,
    /// The commit whose shared checkout is the lowest layer of this task's workspace.
    #[serde(default)]
    pub workspace_base: Option<String>,
    /// The front-end starting or finalizing the task right now (outside the lock).
    #[serde(default)]
    pub claim: Option<Claim>,
    /// Paths the agent left that were not brought home (too large, FIFOs, nested
    /// repositories), and why.
    #[serde(default)]
    pub not_imported: Vec<Skipped>,
    /// Changed files that configure tools, editors, agents or CI (`.handoff.toml`,
    /// `.vscode/`, `.github/workflows/`…): reviewed one by one, never accepted in bulk.
    #[serde(default)]
    pub sensitive_files: Vec<String>,
    /// Things the user should know about the result that are not errors.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Connections the egress proxy refused the agent, by destination.
    #[serde(default)]
    pub blocked: Vec<Blocked>,
    /// Why Handoff stopped the agent before it ended by itself, if it did.
    #[serde(default)]
    pub stopped_for: Option<StopReason>,
    /// Which container of the turn runs: its setup, then its agent.
    #[serde(default)]
    pub phase: Option<RunPhase>,
    /// What the agent spent over the ended turns (from their transcripts).
    #[serde(default)]
    pub spent: Spending,
    /// The attempts this task is one of (`handoff run --attempts`), named by the
    /// first one's id; `None` for a task on its own.
    #[serde(default)]
    pub group: Option<TaskId>,
    /// Lines the result adds and removes against the base.
    #[serde(default)]
    pub lines_added: usize,
    #[serde(default)]
    pub lines_removed: usize,
    /// The environment (setup snapshot) of the current turn, when the profile has a
    /// `setup`: whether it started from one, or why its setup was not kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<EnvUse>,
    /// A task that only runs the setup to make its environment (`handoff env warm`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub warm: bool,
}

/// A turn's use of an environment ([`crate::engine::envs`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvUse {
    /// The environment's key (`handoff env list`).
    pub key: String,
    /// The turn started from an environment an earlier setup left; its setup did not
    /// run.
    pub reused: bool,
    /// The environment's layer is part of the turn's workspace (reused, or kept from
    /// this turn's setup).
    pub layered: bool,
    /// Why this turn's setup was not kept, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_kept: Option<String>,
}

/// Model turns and money, as the agents' transcripts report them (estimated from
/// tokens where a CLI reports no cost).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Spending {
    pub turns: u32,
    pub cost_usd: f64,
}

/// The phases of a turn, each in its own container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunPhase {
    /// `setup`: without the agent's credentials, the tool cache writable.
    Setup,
    /// The agent, then the `check`; the tool cache read-only.
    Agent,
}

/// What a [`StopReason`] means, in words.
pub fn stop_text(reason: &StopReason) -> String {
    match reason {
        StopReason::Timeout { seconds } => format!(
            "it ran longer than its timeout of {} (raise `timeout` of the profile to give it more)",
            crate::agents::profile::duration_text(*seconds)
        ),
        StopReason::Disk {
            limit_bytes,
            used_bytes,
        } => format!(
            "its workspace changes and HOME grew to {} MiB, past its disk limit of {} MiB \
             (raise `disk_limit` of the profile to give it more)",
            used_bytes >> 20,
            limit_bytes >> 20
        ),
        StopReason::Turns { max, used } => format!(
            "it took {used} model turns, past its budget of {max} (`max_turns` of the profile)"
        ),
        StopReason::Cost {
            limit_usd,
            used_usd,
        } => format!(
            "it spent ${used_usd:.2}, past its budget of ${limit_usd:.2} (`max_cost_usd` of the \
             profile; estimated from tokens where the agent reports no cost)"
        ),
    }
}

/// A limit the agent reached, for which Handoff stopped it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "limit")]
pub enum StopReason {
    /// It ran longer than the profile's `timeout`.
    Timeout { seconds: u64 },
    /// Its writable folders grew past the profile's `disk_limit`.
    Disk { limit_bytes: u64, used_bytes: u64 },
    /// It spent more model turns than the profile's `max_turns`.
    Turns { max: u32, used: u32 },
    /// It spent more than the profile's `max_cost_usd`.
    Cost { limit_usd: f64, used_usd: f64 },
}

/// One run of the check command after the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckRun {
    pub command: String,
    pub exit_code: i64,
    pub passed: bool,
    /// The last lines of its output, secrets redacted.
    pub output: String,
}

/// One ended turn of a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    /// What the agent was asked in this turn.
    pub prompt: String,
    pub state: TaskState,
    pub error: Option<String>,
    pub exit_code: Option<i64>,
    /// The branch head after this turn.
    pub head_commit: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub check: Option<CheckRun>,
}

#[derive(Debug, thiserror::Error)]
#[error("task #{id} cannot go from {from} to {to}")]
pub struct InvalidTransition {
    pub id: TaskId,
    pub from: TaskState,
    pub to: TaskState,
}

impl Task {
    /// Moves the task to `next`, stamping start and end times.
    pub fn transition(&mut self, next: TaskState) -> Result<(), InvalidTransition> {
        if !self.state.can_move_to(next) {
            return Err(InvalidTransition {
                id: self.id,
                from: self.state,
                to: next,
            });
        }
        match next {
            TaskState::Queued => self.finished_at = None,
            TaskState::Running => self.started_at = Some(Utc::now()),
            s if s.is_terminal() => self.finished_at = Some(Utc::now()),
            _ => {}
        }
        self.state = next;
        Ok(())
    }

    /// The current turn, from 1: the one running, or the last one once ended.
    pub fn turn_number(&self) -> usize {
        if self.state.is_terminal() {
            self.turns.len().max(1)
        } else {
            self.turns.len() + 1
        }
    }

    /// The current turn as it stands in the record, for `turns` once it has ended.
    pub fn as_turn(&self) -> Turn {
        Turn {
            prompt: self.turn_prompt().to_string(),
            state: self.state,
            error: self.error.clone(),
            exit_code: self.exit_code,
            head_commit: self.head_commit.clone(),
            started_at: self.started_at,
            finished_at: self.finished_at,
            check: self.check.clone(),
        }
    }

    /// The commit the current turn starts from: the branch head for a follow-up, the
    /// snapshot for the first turn.
    pub fn turn_start(&self) -> &str {
        match (&self.reply, &self.head_commit) {
            (Some(_), Some(head)) => head,
            _ => &self.base_commit,
        }
    }

    /// What the agent is asked in the current turn.
    pub fn turn_prompt(&self) -> &str {
        self.reply.as_deref().unwrap_or(&self.prompt)
    }

    /// Seconds the agent has been running (or ran), for progress displays.
    pub fn elapsed_secs(&self) -> Option<i64> {
        let start = self.started_at?;
        let end = self.finished_at.unwrap_or_else(Utc::now);
        Some((end - start).num_seconds().max(0))
    }

    /// The running time as people read it: `42s`, `1m32s`; `None` before it started.
    pub fn elapsed_text(&self) -> Option<String> {
        self.elapsed_secs().map(running_time)
    }
}

/// A running time of `secs` seconds as people read it: `42s`, `1m32s`.
pub fn running_time(secs: i64) -> String {
    if secs >= 60 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else {
        format!("{secs}s")
    }
}

/// A branch-name-safe slug of a title: `Fix the flaky test!` → `fix-the-flaky-test`.
pub fn slug(title: &str) -> String {
    let mut out = String::new();
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
        if out.len() >= 40 {
            break;
        }
    }
    let trimmed = out.trim_end_matches('-');
    if trimmed.is_empty() {
        "task".to_string()
    } else {
        trimmed.to_string()
    }
}

/// The first line of a prompt, shortened for display.
pub fn title_of(prompt: &str) -> String {
    let line = prompt
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let mut title: String = line.chars().take(72).collect();
    if line.chars().count() > 72 {
        title.push('…');
    }
    title
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        let cases = [
            ("Fix the flaky test!", "fix-the-flaky-test"),
            ("  sed -i s/a/b/ file.txt", "sed-i-s-a-b-file-txt"),
            ("héllo wörld", "h-llo-w-rld"),
            ("!!!", "task"),
            ("", "task"),
            (
                "a very long prompt that goes on and on and on forever",
                "a-very-long-prompt-that-goes-on-and-on-a",
            ),
        ];
        for (title, want) in cases {
            assert_eq!(slug(title), want, "slug of {title:?}");
        }
    }

    #[test]
    fn titles() {
        assert_eq!(title_of("\n\n  first line \nsecond"), "first line");
        let long = "x".repeat(100);
        assert_eq!(title_of(&long).chars().count(), 73);
    }

    #[test]
    fn transitions() {
        use TaskState::*;
        let allowed = [
            (Queued, Starting),
            (Queued, Cancelled),
            (Starting, Running),
            (Running, Finalizing),
            (Finalizing, Done),
            (Finalizing, Failed),
            (Finalizing, Cancelled),
            (Done, Queued),
            (Failed, Queued),
        ];
        let refused = [
            (Queued, Done),
            (Running, Done),
            (Done, Running),
            (Done, Starting),
            (Failed, Finalizing),
            (Running, Queued),
        ];
        for (a, b) in allowed {
            assert!(a.can_move_to(b), "{a} -> {b} should be allowed");
        }
        for (a, b) in refused {
            assert!(!a.can_move_to(b), "{a} -> {b} should be refused");
        }
    }

    #[test]
    fn the_turn_number_counts_the_running_turn_and_the_ended_ones() {
        let t = |state, turns: usize| {
            let mut task: Task = serde_json::from_value(serde_json::json!({
                "id": 1, "state": state, "agent": "a", "prompt": "p", "title": "p",
                "branch": "b", "base_commit": "0", "head_commit": null, "files_changed": [],
                "error": null, "image": "i", "container_id": null, "exit_code": null,
                "oom_killed": false, "cancel_requested": false, "env_names": [],
                "origin": null, "created_at": "2026-01-01T00:00:00Z",
                "started_at": null, "finished_at": null
            }))
            .unwrap();
            task.turns = (0..turns)
                .map(|_| Turn {
                    prompt: "p".into(),
                    state: TaskState::Done,
                    error: None,
                    exit_code: Some(0),
                    head_commit: None,
                    started_at: None,
                    finished_at: None,
                    check: None,
                })
                .collect();
            task.turn_number()
        };
        assert_eq!(t("running", 0), 1);
        assert_eq!(t("done", 1), 1);
        assert_eq!(t("queued", 1), 2);
        assert_eq!(t("done", 2), 2);
        // A record written before turns were kept: its one turn.
        assert_eq!(t("done", 0), 1);
    }

    #[test]
    fn ids_parse_with_or_without_hash() {
        assert_eq!("12".parse::<TaskId>(), Ok(TaskId(12)));
        assert_eq!("#7".parse::<TaskId>(), Ok(TaskId(7)));
        assert!("abc".parse::<TaskId>().is_err());
    }
}
