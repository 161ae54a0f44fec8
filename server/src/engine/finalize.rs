//! Finalizing a task once its agent has ended: save the log, commit everything the
//! agent left (its own commits are kept), import the result as the task branch, and
//! record why it ended. Runs under the repository lock and is idempotent, so a
//! front-end that dies half-way leaves work for the next one, never a double import.

use git2::{Oid, Repository};

use super::redact::Redactor;
use super::store::{write_atomic, StoreLock};
use super::task::{CheckRun, Task, TaskState};
use super::{handoff_signature, ms_since, Engine, EngineError};
use crate::config::{Steps, DEFAULT_CHECK_RETRIES};
use crate::git::{import, GitError};
use crate::sandbox::{Sandbox, SandboxStatus};

impl<S: Sandbox> Engine<S> {
    pub(super) async fn finalize(
        &self,
        _lock: &StoreLock,
        mut task: Task,
        status: SandboxStatus,
    ) -> Result<(), EngineError> {
        let id = task.id;
        let clock = std::time::Instant::now();
        if task.state != TaskState::Finalizing {
            task.transition(TaskState::Finalizing)?;
            self.store.save(&task)?;
        }

        if let Some(container) = &task.container_id {
            // The sandbox holds the complete output; the live copy may have gaps.
            if let Ok(raw) = self.sandbox.logs(container).await {
                let redacted = self.redactor_for(&task).await.redact(&raw);
                write_atomic(&self.store.log_path(id), &redacted)?;
            }
        }

        let ws = self.store.workspace_path(id);
        if ws.exists() {
            let workdir = self.workdir.clone();
            let branch = task.branch.clone();
            let base = task.base_commit.clone();
            let message = format!(
                "{}\n\nChanges the agent ({}) left uncommitted in task #{id}.\n",
                task.title, task.agent
            );
            let ws_for_git = ws.clone();
            let imported = tokio::task::spawn_blocking(move || -> Result<_, GitError> {
                let sig = handoff_signature("agent")?;
                import::commit_leftovers(&ws_for_git, &sig, &message)?;
                let user = Repository::open(&workdir)?;
                let head = import::import_branch(&user, &ws_for_git, &branch)?;
                let files = import::files_changed(&user, Oid::from_str(&base)?, head)?;
                Ok((head, files))
            })
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))?;
            match imported {
                Ok((head, files)) => {
                    task.head_commit = Some(head.to_string());
                    task.files_changed = files;
                }
                Err(e) => {
                    // Keep the workspace: it is the only copy of the agent's work.
                    task.error = Some(format!(
                        "could not bring the agent's work home: {e}. Its files are still in {}",
                        ws.display()
                    ));
                    task.transition(TaskState::Failed)?;
                    self.store.save(&task)?;
                    return Ok(());
                }
            }
        }

        let (mut state, mut error) = self.outcome(&task, status);
        if state == TaskState::Failed {
            // A CLI that failed on credentials or rate limits says so in its output.
            if let Some(hint) = self.failure_hint(&task, status) {
                error = error.map(|e| format!("{e}. {hint}"));
            }
        }
        let steps = self
            .config
            .agents
            .get(&task.agent)
            .map(|p| self.config.steps_for(p))
            .unwrap_or_default();
        let redactor = self.redactor_for(&task).await;
        // The agent's HOME holds its session transcripts, which a follow-up resumes
        // and `pull` hands over: whatever the agent printed of a secret goes there too.
        let home = self.store.home_path(id);
        let scrub = redactor.clone();
        let scrubbed = tokio::task::spawn_blocking(move || redact_tree(&home, &scrub))
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        if let Err(e) = scrubbed {
            tracing::warn!(task_id = %id, error = %e, "could not redact the agent's home");
        }
        let out_dir = self.store.task_dir(id).join("out");
        let tail_of = |name: &str| -> String {
            let bytes = std::fs::read(out_dir.join(name)).unwrap_or_default();
            tail(
                &String::from_utf8_lossy(&redactor.redact(&bytes)),
                OUTPUT_TAIL_LINES,
            )
        };
        let rc_of = |name: &str| -> Option<i64> {
            std::fs::read_to_string(out_dir.join(name))
                .ok()
                .and_then(|t| t.trim().parse().ok())
        };
        task.check = None;
        if let (Some(setup), Some(rc)) = (&steps.setup, rc_of("setup.rc")) {
            if rc != 0 && !task.cancel_requested {
                state = TaskState::Failed;
                error = Some(format!(
                    "the setup command `{setup}` failed with exit code {rc}, so the agent did not run. \
                     Its last lines:\n{}",
                    tail_of("setup.log")
                ));
            }
        }
        if let (TaskState::Done, Some(check)) = (state, &steps.check) {
            task.check = Some(match rc_of("check.rc") {
                Some(code) => CheckRun {
                    command: check.clone(),
                    exit_code: code,
                    passed: code == 0,
                    output: tail_of("check.log"),
                },
                None => CheckRun {
                    command: check.clone(),
                    exit_code: -1,
                    passed: false,
                    output: "the check did not run (the container ended before it)".into(),
                },
            });
        }
        if let SandboxStatus::Exited { code, oom_killed } = status {
            task.exit_code = Some(code);
            task.oom_killed = oom_killed;
        }
        task.error = error;
        task.phases_ms.insert("finalize".into(), ms_since(clock));
        if let Some(session) = self.session_of(&task) {
            task.session_id = Some(session);
        }
        task.transition(state)?;
        task.turns.push(task.as_turn());
        // A failing check gets the agent another turn, with the failure, while the
        // profile allows; follow-ups sent while the agent worked go out now too. The
        // ended turn and the next one are saved together, so a front-end that dies
        // here leaves the task finalizing (done again by the next) or queued.
        let container = task.container_id.clone();
        match self.next_turn(&mut task, &steps) {
            Some(prompt) => self.begin_turn(&mut task, prompt)?,
            None => self.store.save(&task)?,
        }
        tracing::info!(task_id = %id, state = %task.state, "task finalized");

        // The branch now holds the work; the scratch copies can go.
        if let Some(container) = &container {
            if let Err(e) = self.sandbox.remove(container).await {
                tracing::warn!(task_id = %id, error = %e, "could not remove container");
            }
        }
        if task.head_commit.is_some() {
            let _ = self.store.remove_workspace(id);
            if let Ok(repo) = Repository::open(&self.workdir) {
                if let Ok(mut r) = repo.find_reference(&format!("refs/handoff/base/{id}")) {
                    let _ = r.delete();
                }
            }
        }
        Ok(())
    }

    /// The prompt of the turn that follows the one just ended, if any: a repair of a
    /// failing check and/or the replies that came while it ran.
    fn next_turn(&self, task: &mut Task, steps: &Steps) -> Option<String> {
        if task.state == TaskState::Cancelled {
            // Queued replies stay on the record; the next `reply` sends them along.
            return None;
        }
        let words = self
            .config
            .agents
            .get(&task.agent)
            .is_some_and(|p| !p.prompt_is_command);
        let default_retries = if words { DEFAULT_CHECK_RETRIES } else { 0 };
        let retries = steps.check_retries.unwrap_or(default_retries);
        let repair = match &task.check {
            Some(run) if !run.passed && task.check_repairs < retries => Some(format!(
                "The check `{}` failed (exit code {}) after your changes. Fix the code so \
                 that it passes; do not weaken or skip the check.\n\nIts output (last lines):\n{}",
                run.command, run.exit_code, run.output
            )),
            _ => None,
        };
        if repair.is_none() && task.pending_replies.is_empty() {
            return None;
        }
        if repair.is_some() {
            task.check_repairs += 1;
        }
        let mut parts: Vec<String> = repair.into_iter().collect();
        parts.extend(std::mem::take(&mut task.pending_replies));
        Some(parts.join("\n\n"))
    }

    /// The session id the current turn's output reports, for agents Handoff understands.
    fn session_of(&self, task: &Task) -> Option<String> {
        let format = self.config.agents.get(&task.agent)?.output_format()?;
        let log = std::fs::read(self.store.log_path(task.id)).ok()?;
        format.parse(&String::from_utf8_lossy(&log)).session_id
    }

    fn failure_hint(&self, task: &Task, status: SandboxStatus) -> Option<String> {
        let format = self.config.agents.get(&task.agent)?.output_format()?;
        let log = std::fs::read(self.store.log_path(task.id)).ok()?;
        let code = match status {
            SandboxStatus::Exited { code, .. } => Some(code),
            _ => None,
        };
        crate::agents::transcript::failure_hint(&format.parse(&String::from_utf8_lossy(&log)), code)
    }

    fn outcome(&self, task: &Task, status: SandboxStatus) -> (TaskState, Option<String>) {
        let kept = match &task.head_commit {
            Some(_) => format!("the work so far is on branch {}", task.branch),
            None => "it had produced no work".to_string(),
        };
        if task.cancel_requested {
            return (TaskState::Cancelled, Some(format!("cancelled; {kept}")));
        }
        match status {
            SandboxStatus::Exited {
                oom_killed: true, ..
            } => {
                let limit = self
                    .config
                    .agents
                    .get(&task.agent)
                    .and_then(|p| p.memory)
                    .map(|m| format!(" of {} MiB", m.0 >> 20))
                    .unwrap_or_default();
                (
                    TaskState::Failed,
                    Some(format!(
                        "the agent ran out of memory (limit{limit}) and was killed; {kept}. \
                         Raise `memory` of profile `{}` in .handoff.toml",
                        task.agent
                    )),
                )
            }
            SandboxStatus::Exited { code: 0, .. } => (TaskState::Done, None),
            SandboxStatus::Exited { code, .. } => (
                TaskState::Failed,
                Some(format!(
                    "the agent exited with code {code}; {kept}. See `handoff logs {}`",
                    task.id
                )),
            ),
            SandboxStatus::Missing => (
                TaskState::Failed,
                Some(format!(
                    "the agent's container disappeared before it was seen to end \
                     (removed outside handoff?); {kept}"
                )),
            ),
            SandboxStatus::Running => (
                TaskState::Failed,
                Some(format!("the agent was stopped while running; {kept}")),
            ),
        }
    }
}

/// Files larger than this in the agent's HOME are left as they are (caches, not
/// transcripts).
const MAX_REDACTED_FILE: u64 = 64 << 20;

/// Rewrites every file under `dir` that holds a secret value, with the value redacted.
fn redact_tree(dir: &std::path::Path, redactor: &Redactor) -> std::io::Result<()> {
    if redactor.is_empty() {
        return Ok(());
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let kind = entry.file_type()?;
        let path = entry.path();
        if kind.is_dir() {
            redact_tree(&path, redactor)?;
        } else if kind.is_file() && entry.metadata()?.len() <= MAX_REDACTED_FILE {
            let bytes = std::fs::read(&path)?;
            let clean = redactor.redact(&bytes);
            if clean != bytes {
                // In place: the file keeps its owner (the agent) and mode.
                std::fs::write(&path, clean)?;
            }
        }
    }
    Ok(())
}

/// Lines of setup and check output kept in the record and the repair prompt.
const OUTPUT_TAIL_LINES: usize = 60;

/// The last `n` lines of `text`, with a note when lines were left out.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(n);
    let mut out = String::new();
    if from > 0 {
        out.push_str(&format!("[{from} earlier lines left out]\n"));
    }
    out.push_str(&lines[from..].join("\n"));
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn tails_keep_the_last_lines_and_say_so() {
        assert_eq!(
            super::tail("a\nb\nc\n", 2),
            "[1 earlier lines left out]\nb\nc"
        );
        assert_eq!(super::tail("a\n", 5), "a");
    }
}
