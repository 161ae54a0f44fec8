//! Finalizing a task once its agent has ended: save the log, import what the agent
//! wrote as the task branch, read the runner's reports, and record why it ended.
//!
//! Runs under the task's claim, without the repository lock (an import of a large
//! result takes time), and takes the lock only to save the outcome. It is idempotent:
//! a front-end that dies half-way leaves the claim to expire and the work to the next
//! one, never a double import. Everything read here that the agent wrote — its
//! workspace changes, HOME, reports — is read through [`crate::untrusted`].

use git2::{Oid, Repository};

use super::redact::Redactor;
use super::store::write_atomic;
use super::task::{CheckRun, Task, TaskState};
use super::{handoff_signature, ms_since, Engine, EngineError};
use crate::agents::{Steps, DEFAULT_CHECK_RETRIES};
use crate::git::import::{self, ImportLimits, ImportRequest, Imported};
use crate::git::GitError;
use crate::sandbox::{Sandbox, SandboxError, SandboxStatus};
use crate::untrusted::{EntryKind, UntrustedTree, Visit, WalkLimits};

impl<S: Sandbox> Engine<S> {
    pub(super) async fn finalize(
        &self,
        task: Task,
        status: SandboxStatus,
    ) -> Result<(), EngineError> {
        let id = task.id;
        let clock = std::time::Instant::now();
        let container = task.container_id.clone();
        let workspaces = self.turn_workspaces(&task);
        if let Some(container) = &container {
            // The sandbox holds the complete output; the live copy may have gaps.
            if let Err(e) = self.save_log(&task, container).await {
                tracing::warn!(task_id = %id, error = %e, "could not save the agent's output");
            }
        }

        super::fault::point("finalize:after-log");
        let mut refused = None;
        let mut left_behind = vec![];
        if let Some(container) = &container {
            let phase = task.phase.unwrap_or(super::task::RunPhase::Agent);
            match self.collect(&task, container, phase).await {
                Ok(left) => left_behind = left,
                // Hostile or over a limit: asking again gets the same answer.
                Err(EngineError::Sandbox(e @ SandboxError::ResultRefused(_))) => {
                    refused = Some(e.to_string());
                }
                Err(e) => {
                    // The work is still in the container: leave the task to the next
                    // tick.
                    tracing::warn!(task_id = %id, error = %e, "could not collect the agent's work");
                    self.update_claimed(id, |_| Ok(())).await?;
                    return Err(e);
                }
            }
        }
        let imported = match &refused {
            None => self.import(&task).await,
            Some(why) => Err(GitError::Untrusted(why.clone())),
        };
        super::fault::point("finalize:after-import");
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
        let mut warnings = Vec::new();
        if !left_behind.is_empty() {
            const SHOWN: usize = 10;
            let more = left_behind.len().saturating_sub(SHOWN);
            warnings.push(format!(
                "{} file(s) stayed on the engine, not brought back: the result would have \
                 passed the disk limit ({}{})",
                left_behind.len(),
                left_behind[..left_behind.len().min(SHOWN)].join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            ));
        }
        if let Err(e) = scrubbed {
            tracing::warn!(task_id = %id, error = %e, "could not redact the agent's home");
            warnings.push(format!(
                "secrets could not be removed from the agent's HOME: {e}"
            ));
        }
        let reports = Reports::read(&self.store.out_path(id), &redactor);
        for (name, text) in [
            ("setup.log", &reports.setup_log),
            ("check.log", &reports.check_log),
        ] {
            if let Some(text) = text {
                write_atomic(&self.store.task_dir(id).join(name), text.as_bytes())?;
            }
        }
        let blocked = match self.profile(Some(&task.agent)).map(|p| p.network) {
            Ok(crate::agents::Network::Egress) => Some(self.close_egress(&task).await),
            _ => None,
        };
        let session = self.session_of(&task);
        let spent_now = self.spent_in_turn(&task);
        let hint = self.failure_hint(&task, status);
        let finalize_ms = ms_since(clock);

        let saved = self
            .update_claimed(id, |task| {
                let repo_branch = task.branch.clone();
                match &imported {
                    Ok(result) => {
                        result.apply_to(task);
                        let imported = &result.imported;
                        if let Some(why) = &imported.commits_dropped {
                            warnings.push(format!(
                                "the agent's own commits were not kept ({why}); its files are on {repo_branch}"
                            ));
                        }
                    }
                    Err(_) if refused.is_some() => {
                        task.error = Some(format!(
                            "{}. Nothing of this turn was imported",
                            refused.as_deref().unwrap_or_default()
                        ));
                        task.warnings = warnings.clone();
                        task.phases_ms.insert("finalize".into(), finalize_ms);
                        task.transition(TaskState::Failed)?;
                        task.turns.push(task.as_turn());
                        return Ok(());
                    }
                    Err(e) => {
                        // Keep the agent's writes: they are the only copy of its work.
                        task.error = Some(format!(
                            "could not bring the agent's work home: {e}. Its files are kept in {}; \
                             fix the cause (free disk space?) and run `handoff recover {id}`",
                            self.store.upper_path(id).display()
                        ));
                        task.warnings = warnings.clone();
                        task.phases_ms.insert("finalize".into(), finalize_ms);
                        task.transition(TaskState::Failed)?;
                        task.turns.push(task.as_turn());
                        return Ok(());
                    }
                }
                let (mut state, mut error) = self.outcome(task, status);
                if state == TaskState::Failed {
                    if let Some(hint) = &hint {
                        error = error.map(|e| format!("{e}. {hint}"));
                    }
                }
                task.check = None;
                if let (Some(setup), Some(rc)) = (&steps.setup, reports.setup_rc) {
                    if rc != 0 && !task.cancel_requested {
                        state = TaskState::Failed;
                        error = Some(format!(
                            "the setup command `{setup}` failed with exit code {rc}, so the agent did not run. \
                             Its last lines:\n{}",
                            tail(reports.setup_log.as_deref().unwrap_or(""), OUTPUT_TAIL_LINES)
                        ));
                    }
                }
                if let (TaskState::Done, Some(check)) = (state, &steps.check) {
                    task.check = Some(match reports.check_rc {
                        Some(code) => CheckRun {
                            command: check.clone(),
                            exit_code: code,
                            passed: code == 0,
                            output: tail(reports.check_log.as_deref().unwrap_or(""), OUTPUT_TAIL_LINES),
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
                match &blocked {
                    Some(Some(list)) => task.blocked = list.clone(),
                    Some(None) => warnings.push(
                        "what the egress proxy refused is not known: it was restarted while \
                         the agent ran"
                            .into(),
                    ),
                    None => {}
                }
                task.warnings = warnings.clone();
                task.phases_ms.insert("finalize".into(), finalize_ms);
                if let Some(session) = &session {
                    task.session_id = Some(session.clone());
                }
                task.spent.turns += spent_now.turns;
                task.spent.cost_usd += spent_now.cost_usd;
                task.transition(state)?;
                task.turns.push(task.as_turn());
                // A failing check gets the agent another turn, with the failure, while the
                // profile allows; follow-ups sent while the agent worked go out now too. The
                // ended turn and the next one are saved together, so a front-end that dies
                // here leaves the task finalizing (done again by the next) or queued.
                if let Some(prompt) = self.next_turn(task, &steps) {
                    self.begin_turn(task, prompt)?;
                }
                Ok(())
            })
            .await?;
        let Some(task) = saved else {
            return Ok(());
        };
        super::fault::point("finalize:after-save");
        tracing::info!(task_id = %id, state = %task.state, "task finalized");

        // The branch now holds the work (or the upper folder does, for `recover`):
        // what the turn used can go. If this fails, or this process dies first, a
        // later tick does it (`release.rs`).
        let released = self
            .release_turn(&task, container.as_deref(), &workspaces, imported.is_ok())
            .await;
        if let Err(e) = released {
            tracing::warn!(task_id = %id, error = %e, "could not release the ended turn yet");
        }
        Ok(())
    }

    /// Streams the agent's output from the sandbox into the task log, redacted, in
    /// bounded memory, cut at [`crate::sandbox::MAX_LOG_BYTES`].
    async fn save_log(&self, task: &Task, container: &str) -> Result<(), EngineError> {
        use futures_util::StreamExt;
        use std::io::Write;
        let path = self.store.log_path(task.id);
        let tmp = path.with_extension("saving");
        let io = |e: std::io::Error| EngineError::Internal(format!("{}: {e}", tmp.display()));
        let mut file = std::io::BufWriter::new(std::fs::File::create(&tmp).map_err(io)?);
        let mut redactor = self.redactor_for(task).await;
        let mut stream = self.sandbox.follow_logs(container);
        let mut written = 0usize;
        let mut cut = false;
        while let Some(chunk) = stream.next().await {
            let out = redactor.push(&chunk?);
            let room = crate::sandbox::MAX_LOG_BYTES.saturating_sub(written);
            if out.len() > room {
                file.write_all(&out[..room]).map_err(io)?;
                cut = true;
                break;
            }
            written += out.len();
            file.write_all(&out).map_err(io)?;
        }
        if cut {
            let note = format!(
                "\n[handoff: the output was cut at {} MiB; the rest was not kept]\n",
                crate::sandbox::MAX_LOG_BYTES >> 20
            );
            file.write_all(note.as_bytes()).map_err(io)?;
        } else {
            file.write_all(&redactor.finish()).map_err(io)?;
        }
        let file = file.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)?;
        Ok(())
    }

    /// Imports what the agent wrote as the task branch: the new head, the changed
    /// files and the sensitive ones among them.
    pub(super) async fn import(&self, task: &Task) -> Result<TaskImport, GitError> {
        let id = task.id;
        let workdir = self.workdir.clone();
        let upper = self.store.upper_path(id);
        let scratch = self.store.quarantine_path(id);
        let branch = task.branch.clone();
        let start = task.turn_start().to_string();
        let base = task.base_commit.clone();
        let message = format!(
            "{}\n\nChanges the agent ({}) left uncommitted in task #{id}.\n",
            task.title, task.agent
        );
        let legacy = self.store.task_dir(id).join("workspace");
        let ignore = self
            .config
            .profile(&task.agent)
            .map(|p| p.ignore.clone())
            .unwrap_or_default();
        let limits = ImportLimits {
            max_total_bytes: self
                .config
                .profile(&task.agent)
                .map(|p| p.limits.import_bytes)
                .unwrap_or(ImportLimits::default().max_total_bytes),
            ..ImportLimits::default()
        };
        tokio::task::spawn_blocking(move || {
            if !upper.exists() && legacy.exists() {
                return Err(GitError::Untrusted(format!(
                    "this task was started by an older Handoff, whose workspace is at {}",
                    legacy.display()
                )));
            }
            let user = Repository::open(&workdir)?;
            let sig = handoff_signature("agent")?;
            let imported = import::import_result(
                &user,
                &ImportRequest {
                    upper: &upper,
                    start: Oid::from_str(&start)?,
                    branch: &branch,
                    scratch: &scratch,
                    signature: &sig,
                    message: &message,
                    limits,
                    ignore: &ignore,
                },
            )?;
            let base = Oid::from_str(&base)?;
            let files = import::files_changed(&user, base, imported.head)?;
            let sensitive = files
                .iter()
                .filter(|f| crate::agents::is_sensitive_path(f))
                .cloned()
                .collect();
            let lines = import::line_counts(&user, base, imported.head)?;
            Ok(TaskImport {
                imported,
                files,
                sensitive,
                lines,
            })
        })
        .await
        .map_err(|e| GitError::Untrusted(e.to_string()))?
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
        // A spent budget gets no repair turn (replies the user sent still go).
        let limits = self
            .config
            .profile(&task.agent)
            .map(|p| p.limits)
            .unwrap_or_default();
        let spent = limits.max_turns.is_some_and(|max| task.spent.turns >= max)
            || limits
                .max_cost_usd
                .is_some_and(|max| task.spent.cost_usd >= max);
        let repair = match repair {
            Some(_) if spent => {
                task.warnings.push(format!(
                    "no repair turn for the failing check: the task's budget is spent \
                     ({} model turns, ${:.2})",
                    task.spent.turns, task.spent.cost_usd
                ));
                None
            }
            other => other,
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

    /// What the turn just ended spent, for agents Handoff understands.
    fn spent_in_turn(&self, task: &Task) -> crate::agents::budget::Spent {
        let Some(format) = self
            .config
            .agents
            .get(&task.agent)
            .and_then(|p| p.output_format())
        else {
            return Default::default();
        };
        let log = std::fs::read(self.store.log_path(task.id)).unwrap_or_default();
        crate::agents::budget::spent(&format.parse(&String::from_utf8_lossy(&log)))
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
        if let Some(reason) = &task.stopped_for {
            return (
                TaskState::Failed,
                Some(format!(
                    "Handoff stopped the agent: {}; {kept}",
                    super::task::stop_text(reason)
                )),
            );
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

/// What an import brought home, with what the record says of it.
pub(super) struct TaskImport {
    pub imported: Imported,
    pub files: Vec<String>,
    pub sensitive: Vec<String>,
    /// Lines added and removed against the task's base.
    pub lines: (usize, usize),
}

impl TaskImport {
    /// Puts the result on the record: head, files, line counts, what did not come home.
    pub fn apply_to(&self, task: &mut Task) {
        task.head_commit = Some(self.imported.head.to_string());
        task.files_changed = self.files.clone();
        task.sensitive_files = self.sensitive.clone();
        task.not_imported = self.imported.skipped.clone();
        (task.lines_added, task.lines_removed) = self.lines;
    }
}

/// What Handoff's runner reported from inside the container, read as hostile input:
/// exit codes parsed from small files, logs bounded and redacted.
#[derive(Debug, Default)]
struct Reports {
    setup_rc: Option<i64>,
    check_rc: Option<i64>,
    setup_log: Option<String>,
    check_log: Option<String>,
}

/// The most of a setup or check log read.
const MAX_REPORT_LOG: u64 = 4 << 20;

impl Reports {
    fn read(out_dir: &std::path::Path, redactor: &Redactor) -> Reports {
        let Ok(Some(tree)) = UntrustedTree::open(out_dir) else {
            return Reports::default();
        };
        let rc = |name: &str| -> Option<i64> {
            let bytes = tree.read_file(name.as_bytes(), 64).ok()?;
            String::from_utf8_lossy(&bytes).trim().parse().ok()
        };
        let log = |name: &str| -> Option<String> {
            let (file, size) = tree.open_file(name.as_bytes()).ok()?;
            // The end of a long log is what matters: skip to its last part.
            let mut file = file;
            if size > MAX_REPORT_LOG {
                use std::io::Seek;
                file.seek(std::io::SeekFrom::Start(size - MAX_REPORT_LOG))
                    .ok()?;
            }
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_REPORT_LOG), &mut bytes)
                .ok()?;
            Some(String::from_utf8_lossy(&redactor.redact(&bytes)).into_owned())
        };
        Reports {
            setup_rc: rc("setup.rc"),
            check_rc: rc("check.rc"),
            setup_log: log("setup.log"),
            check_log: log("check.log"),
        }
    }
}

/// Rewrites every file under `dir` that holds a secret value, with the value
/// redacted: files of any size (streamed) and mode, never following a symlink.
fn redact_tree(dir: &std::path::Path, redactor: &Redactor) -> Result<(), String> {
    if redactor.is_empty() {
        return Ok(());
    }
    let Some(tree) = UntrustedTree::open(dir).map_err(|e| e.to_string())? else {
        return Ok(());
    };
    let mut files = Vec::new();
    tree.walk(WalkLimits::default(), |e| {
        if let EntryKind::File { .. } = e.kind {
            files.push(e.path.clone());
        }
        Visit::Descend
    })
    .map_err(|e| e.to_string())?;
    for rel in files {
        let (file, _) = tree.open_file(&rel).map_err(|e| e.to_string())?;
        let holds_secret = redactor
            .copy_redacted(std::io::BufReader::new(file), std::io::sink())
            .map_err(|e| e.to_string())?;
        if holds_secret {
            let (file, _) = tree.open_file(&rel).map_err(|e| e.to_string())?;
            tree.replace_file(&rel, |out| {
                let mut out = std::io::BufWriter::new(out);
                redactor.copy_redacted(std::io::BufReader::new(file), &mut out)?;
                std::io::Write::flush(&mut out)
            })
            .map_err(|e| e.to_string())?;
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
