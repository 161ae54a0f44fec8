//! The task engine: creating tasks, scheduling them onto a [`Sandbox`], reconciling
//! with it after any front-end died, and bringing results home as branches.
//!
//! The engine never imports a front-end (`cli`, `lsp`). Every front-end drives it the
//! same way: create tasks, call [`Engine::tick`] now and then, read records.

mod adopt;
mod claim;
pub mod comments;
mod egress;
mod environments;
pub mod envs;
pub mod fault;
mod finalize;
pub mod index;
mod pull;
pub mod redact;
mod release;
pub mod review;
mod scheduler;
pub mod store;
pub mod task;

pub use pull::{claude_project_dir, Pulled};

use std::path::{Path, PathBuf};

use chrono::Utc;
use git2::Repository;

use crate::agents::{AgentProfile, MAX_ARG_BYTES};
use crate::config::{Config, ConfigError};
use crate::git::{self, snapshot, GitError};
use crate::sandbox::{Sandbox, SandboxError};
use redact::Redactor;
use store::{Store, StoreError};
use task::{Origin, Task, TaskId, TaskState};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error("{0}")]
    Invalid(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<task::InvalidTransition> for EngineError {
    fn from(e: task::InvalidTransition) -> Self {
        EngineError::Internal(e.to_string())
    }
}

/// What a front-end asks for when it delegates.
#[derive(Debug, Clone, Default)]
pub struct NewTask {
    pub prompt: String,
    /// One-line summary for lists and the branch name; the prompt's first line when
    /// `None`.
    pub title: Option<String>,
    /// Profile name; the configured default when `None`.
    pub agent: Option<String>,
    pub origin: Option<Origin>,
    /// Only run the profile's setup and keep its environment (`handoff env warm`).
    pub warm: bool,
}

/// One repository's tasks, run on one sandbox.
pub struct Engine<S: Sandbox> {
    workdir: PathBuf,
    git_dir: PathBuf,
    store: Store,
    config: Config,
    sandbox: S,
    /// When this process last measured each running task's disk use.
    disk_checked: std::sync::Mutex<std::collections::HashMap<TaskId, std::time::Instant>>,
}

impl<S: Sandbox> Engine<S> {
    /// Finds the repository containing `path`, loads its configuration and store.
    pub fn open(path: &Path, sandbox: S) -> Result<Engine<S>, EngineError> {
        Self::open_with(path, |_| sandbox)
    }

    /// [`Engine::open`] with the sandbox made from the repository's configuration
    /// (its `[engine]`).
    pub fn open_with(
        path: &Path,
        sandbox: impl FnOnce(&Config) -> S,
    ) -> Result<Engine<S>, EngineError> {
        let (workdir, git_dir) = Self::find_repo(path)?;
        let config = Config::load(Some(&workdir))?;
        let sandbox = sandbox(&config);
        let store = Store::open(&git_dir)?;
        Ok(Engine {
            workdir,
            git_dir,
            store,
            config,
            sandbox,
            disk_checked: Default::default(),
        })
    }

    /// (working tree, common git dir) of the repository containing `path`.
    pub fn find_repo(path: &Path) -> Result<(PathBuf, PathBuf), GitError> {
        git::init();
        let repo = Repository::discover(path).map_err(|_| GitError::NotARepository {
            path: path.to_path_buf(),
        })?;
        let workdir = repo
            .workdir()
            .ok_or_else(|| GitError::Bare {
                path: repo.path().to_path_buf(),
            })?
            .to_path_buf();
        // Canonical, so that every front-end names the repository the same way (it
        // is part of container names and labels).
        let git_dir = repo
            .commondir()
            .canonicalize()
            .map_err(|source| GitError::Read {
                path: repo.commondir().to_path_buf(),
                source,
            })?;
        Ok((workdir, git_dir))
    }

    pub fn workdir(&self) -> &Path {
        &self.workdir
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn sandbox(&self) -> &S {
        &self.sandbox
    }

    fn repo(&self) -> Result<Repository, GitError> {
        Ok(Repository::open(&self.workdir)?)
    }

    pub fn profile(&self, name: Option<&str>) -> Result<&AgentProfile, EngineError> {
        let name = name.unwrap_or(&self.config.default_agent);
        self.config.profile(name).map_err(EngineError::Invalid)
    }

    /// Snapshots the working tree and records a queued task. Returns at once; call
    /// [`Engine::tick`] to start it.
    pub async fn create_task(&self, new: NewTask) -> Result<Task, EngineError> {
        let agents: Vec<Option<String>> = vec![new.agent.clone()];
        let mut tasks = self.create_attempts(new, &agents, 1).await?;
        Ok(tasks.remove(0))
    }

    /// Snapshots the working tree once and records `attempts` queued tasks with the
    /// same prompt and snapshot, their agents taken in turn from `agents` (the default
    /// agent for `None`). Several attempts form a group, named by the first task's id
    /// (`group` on each record), to compare and pick one from.
    pub async fn create_attempts(
        &self,
        new: NewTask,
        agents: &[Option<String>],
        attempts: usize,
    ) -> Result<Vec<Task>, EngineError> {
        if !(1..=MAX_ATTEMPTS).contains(&attempts) || agents.is_empty() {
            return Err(EngineError::Invalid(format!(
                "attempts must be between 1 and {MAX_ATTEMPTS}"
            )));
        }
        let prompt = new.prompt.trim_end().to_string();
        if prompt.trim().is_empty() {
            return Err(EngineError::Invalid(
                "the prompt is empty; say what the agent should do".into(),
            ));
        }
        refuse_nul("prompt", &prompt)?;
        if let Some(title) = &new.title {
            refuse_nul("title", title)?;
        }
        let mut profiles = Vec::new();
        for agent in agents {
            let profile = self.profile(agent.as_deref())?.clone();
            // Refuse now, not in the container, a prompt the command line cannot carry.
            profile.argv(&prompt).map_err(EngineError::Invalid)?;
            profiles.push(profile);
        }

        let workdir = self.workdir.clone();
        let title = match new.title.as_deref().map(str::trim) {
            Some(t) if !t.is_empty() => task::title_of(t),
            _ => task::title_of(&prompt),
        };
        let clock = std::time::Instant::now();
        let message = format!("handoff: snapshot of the working tree\n\nTask: {title}\n");
        let snap = tokio::task::spawn_blocking(move || -> Result<_, GitError> {
            let repo = Repository::open(&workdir)?;
            let sig = handoff_signature("snapshot")?;
            snapshot::snapshot(&repo, &sig, &message)
        })
        .await
        .map_err(|e| EngineError::Internal(e.to_string()))??;
        let snapshot_ms = ms_since(clock);

        let store = self.store.clone();
        let lock = tokio::task::spawn_blocking(move || store.lock())
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))??;
        let mut tasks: Vec<Task> = Vec::with_capacity(attempts);
        for n in 0..attempts {
            let profile = &profiles[n % profiles.len()];
            let id = self.store.allocate_id(&lock)?;
            let group = match attempts {
                1 => None,
                _ => Some(tasks.first().map_or(id, |t| t.id)),
            };
            let branch = format!("handoff/{id}-{}", task::slug(&title));
            // Keep the snapshot reachable until the branch exists.
            self.repo()?
                .reference(
                    &format!("refs/handoff/base/{id}"),
                    snap.commit,
                    true,
                    "handoff: task base",
                )
                .map_err(GitError::from)?;
            store::write_atomic(&self.store.prompt_path(id), prompt.as_bytes())?;
            let task = Task {
                id,
                state: TaskState::Queued,
                agent: profile.name.clone(),
                prompt: prompt.clone(),
                title: title.clone(),
                branch,
                base_commit: snap.commit.to_string(),
                head_commit: None,
                files_changed: vec![],
                error: None,
                image: self.image_for(profile),
                image_id: None,
                container_id: None,
                exit_code: None,
                oom_killed: false,
                cancel_requested: false,
                env_names: profile.env.clone(),
                origin: new.origin.clone(),
                phases_ms: [("snapshot".to_string(), snapshot_ms)].into(),
                created_at: Utc::now(),
                started_at: None,
                finished_at: None,
                turns: vec![],
                reply: None,
                pending_replies: vec![],
                session_id: None,
                check: None,
                check_repairs: 0,
                workspace_base: Some(snap.head.to_string()),
                claim: None,
                not_imported: vec![],
                sensitive_files: vec![],
                warnings: vec![],
                blocked: vec![],
                stopped_for: None,
                phase: None,
                spent: Default::default(),
                group,
                lines_added: 0,
                lines_removed: 0,
                environment: None,
                warm: new.warm,
            };
            self.store.save(&task)?;
            tracing::info!(task_id = %id, agent = %task.agent, "task created");
            tasks.push(task);
        }
        drop(lock);
        Ok(tasks)
    }

    /// The tasks of group `group` (its first task's id), by id.
    pub fn group(&self, group: TaskId) -> Result<Vec<Task>, EngineError> {
        let tasks: Vec<Task> = self
            .list()?
            .into_iter()
            .filter(|t| t.group == Some(group))
            .collect();
        if tasks.is_empty() {
            return Err(EngineError::Invalid(format!(
                "no group {group}: a group is named by the id of its first task (see `handoff list`)"
            )));
        }
        Ok(tasks)
    }

    pub fn get(&self, id: TaskId) -> Result<Task, EngineError> {
        Ok(self.store.load(id)?)
    }

    /// The task once it is past starting: when another tick (of this front-end or
    /// another) claimed its start, waits (up to half a minute) for that to end, so that
    /// what a front-end reports after `tick` is where the task stands, not the
    /// moment in between.
    pub async fn get_started(&self, id: TaskId) -> Result<Task, EngineError> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let task = self.store.load(id)?;
            let starting = task.state == TaskState::Starting
                && task.claim.as_ref().is_some_and(claim::Claim::is_alive);
            if !starting || std::time::Instant::now() > deadline {
                return Ok(task);
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    pub fn list(&self) -> Result<Vec<Task>, EngineError> {
        Ok(self.store.list()?)
    }

    /// Sends a follow-up to a task: a finished task gets another turn on its branch,
    /// queued (call [`Engine::tick`] to start it; it resumes the agent's session when
    /// the profile can); a queued or running one keeps the message and delivers it
    /// when the current turn ends. The reply is on the record when this returns.
    pub async fn reply(&self, id: TaskId, message: &str) -> Result<Task, EngineError> {
        refuse_nul("reply", message)?;
        // The user's pending review comments go with the reply (or are the reply).
        let comments = self.comments_prompt(id)?;
        let message = match (comments, message.trim().is_empty()) {
            (None, true) => {
                return Err(EngineError::Invalid(
                    "the reply is empty; say what the agent should do next (or comment on its \
                     changes first: `handoff comment`)"
                        .into(),
                ))
            }
            (Some(comments), true) => comments,
            (Some(comments), false) => format!("{comments}\n{}", message.trim_end()),
            (None, false) => message.trim_end().to_string(),
        };
        let message = message.as_str();
        let lock = self.lock().await?;
        let mut task = self.store.load(id)?;
        let profile = self.profile(Some(&task.agent))?.clone();
        profile
            .follow_up_argv(message, task.session_id.as_deref())
            .map_err(EngineError::Invalid)?;
        if task.state.is_terminal() {
            if self.needs_recovery(&task) {
                return Err(EngineError::Invalid(format!(
                    "task #{id}'s last work is still only in {} (it could not be brought home: {}); \
                     run `handoff recover {id}` first",
                    self.store.upper_path(id).display(),
                    task.error.as_deref().unwrap_or("unknown error")
                )));
            }
            let mut parts = std::mem::take(&mut task.pending_replies);
            parts.push(message.to_string());
            let mut prompt = parts.join("\n\n");
            if task.started_at.is_none() {
                // The first turn never ran (say, credentials were missing): run the
                // task's prompt with the reply after it.
                prompt = format!("{}\n\n{prompt}", task.prompt);
            }
            self.begin_turn(&mut task, prompt)?;
        } else {
            task.pending_replies.push(message.to_string());
            self.store.save(&task)?;
        }
        // Carried by the turn now queued (or by the reply kept for the running one).
        self.mark_comments_sent(id, task.turns.len() + 1)?;
        drop(lock);
        Ok(task)
    }

    /// Queues the next turn of an ended task. Call with the lock held.
    fn begin_turn(&self, task: &mut Task, prompt: String) -> Result<(), EngineError> {
        let id = task.id;
        let log = self.store.log_path(id);
        if task.turns.is_empty() && task.started_at.is_some() {
            // A record from before turns were kept: its one turn, so its log stays.
            let first = task.as_turn();
            task.turns.push(first);
        }
        if !task.turns.is_empty() && log.exists() {
            let kept = self.store.turn_log_path(id, task.turns.len());
            std::fs::rename(&log, &kept).map_err(|source| StoreError::Io {
                action: "keep the log of the last turn as",
                path: kept.clone(),
                source,
            })?;
        }
        // Decisions name hunks of the previous result; the next result is reviewed
        // afresh (the old decisions stay on disk beside it).
        let review = self.store.task_dir(id).join("review.json");
        if review.exists() {
            let kept = self
                .store
                .task_dir(id)
                .join(format!("review.{}.json", task.turns.len()));
            let _ = std::fs::rename(&review, kept);
        }
        store::write_atomic(&self.store.prompt_path(id), prompt.as_bytes())?;
        task.reply = Some(prompt);
        task.error = None;
        task.exit_code = None;
        task.oom_killed = false;
        task.cancel_requested = false;
        task.container_id = None;
        task.transition(TaskState::Queued)?;
        self.store.save(task)?;
        tracing::info!(task_id = %id, turn = task.turns.len() + 1, "follow-up queued");
        Ok(())
    }

    /// The output of every turn, oldest first; secrets redacted. The current turn's
    /// output is live while its agent runs.
    pub async fn turn_logs(&self, id: TaskId) -> Result<Vec<TurnLog>, EngineError> {
        let task = self.store.load(id)?;
        let mut turns = Vec::new();
        for (n, turn) in task.turns.iter().enumerate() {
            let path = self.store.turn_log_path(id, n + 1);
            if path.exists() {
                turns.push(TurnLog {
                    prompt: turn.prompt.clone(),
                    output: read_or_empty(&path)?,
                    check: turn.check.clone(),
                });
            }
        }
        let output =
            if let (false, Some(container)) = (task.state.is_terminal(), &task.container_id) {
                let raw = self.sandbox.logs(container).await?;
                self.redactor_for(&task).await.redact(&raw)
            } else {
                read_or_empty(&self.store.log_path(id))?
            };
        turns.push(TurnLog {
            prompt: task.turn_prompt().to_string(),
            output,
            check: task.check.clone().filter(|_| task.state.is_terminal()),
        });
        Ok(turns)
    }

    /// The task's output so far, every turn, secrets redacted.
    pub async fn logs(&self, id: TaskId) -> Result<Vec<u8>, EngineError> {
        let turns = self.turn_logs(id).await?;
        let many = turns.len() > 1;
        let mut out = Vec::new();
        for (n, turn) in turns.into_iter().enumerate() {
            if many && n > 0 {
                out.extend_from_slice(turn_heading(n + 1, &turn.prompt).as_bytes());
            }
            out.extend_from_slice(&turn.output);
            if let Some(check) = &turn.check {
                out.extend_from_slice(check_section(check).as_bytes());
            }
        }
        Ok(out)
    }

    /// Calls `sink` with the task's output, live while the agent runs, redacted.
    /// Returns when the agent has ended (at once for a finished task).
    pub async fn follow_logs(
        &self,
        id: TaskId,
        mut sink: impl FnMut(&[u8]),
    ) -> Result<(), EngineError> {
        use futures_util::StreamExt;
        let task = self.store.load(id)?;
        match (&task.state, &task.container_id) {
            (TaskState::Running | TaskState::Starting, Some(container)) => {
                let mut redactor = self.redactor_for(&task).await;
                let mut stream = self.sandbox.follow_logs(container);
                while let Some(chunk) = stream.next().await {
                    sink(&redactor.push(&chunk?));
                }
                sink(&redactor.finish());
                Ok(())
            }
            _ => {
                sink(&self.logs(id).await?);
                Ok(())
            }
        }
    }

    /// The task's output as a readable transcript, for agents whose output Handoff
    /// understands (Claude Code, Codex); `None` for others.
    pub async fn transcript(&self, id: TaskId) -> Result<Option<String>, EngineError> {
        let task = self.store.load(id)?;
        let Some(format) = self
            .config
            .agents
            .get(&task.agent)
            .and_then(|p| p.output_format())
        else {
            return Ok(None);
        };
        let turns = self.turn_logs(id).await?;
        let many = turns.len() > 1;
        let mut out = String::new();
        for (n, turn) in turns.into_iter().enumerate() {
            if many {
                out.push_str(&turn_heading(n + 1, &turn.prompt));
            }
            let transcript = format.parse(&String::from_utf8_lossy(&turn.output));
            out.push_str(&crate::agents::transcript::render::render(&transcript));
            if let Some(check) = &turn.check {
                out.push_str(&check_section(check));
            }
        }
        Ok(Some(out))
    }

    /// Secrets to hide in this task's output: the values its container was given.
    async fn redactor_for(&self, task: &Task) -> Redactor {
        let mut secrets = Vec::new();
        if let Some(container) = &task.container_id {
            secrets = self
                .sandbox
                .env_values(container, &task.env_names)
                .await
                .unwrap_or_default();
        }
        // The caller's own values too, in case the container is already gone.
        for name in &task.env_names {
            if let Ok(v) = std::env::var(name) {
                secrets.push((name.clone(), v));
            }
        }
        Redactor::new(secrets)
    }

    /// `git diff base..head` of a finished task (or of its work so far).
    pub fn diff(&self, id: TaskId) -> Result<Vec<u8>, EngineError> {
        let task = self.store.load(id)?;
        let repo = self.repo()?;
        let base = git2::Oid::from_str(&task.base_commit).map_err(GitError::from)?;
        let head = match &task.head_commit {
            Some(h) => git2::Oid::from_str(h).map_err(GitError::from)?,
            None => {
                return Err(EngineError::Invalid(format!(
                "task #{id} is {}; its diff exists once it has finished (see `handoff logs {id}`)",
                task.state
            )))
            }
        };
        if repo.find_commit(head).is_err() {
            return Err(EngineError::Invalid(format!(
                "task #{id}'s result {head} is no longer in this repository"
            )));
        }
        Ok(git::import::unified_diff(&repo, base, head)?)
    }

    /// Stops a queued or running task; running work is kept on its branch.
    pub async fn cancel(&self, id: TaskId) -> Result<Task, EngineError> {
        let lock = self.lock().await?;
        let mut task = self.store.load(id)?;
        match task.state {
            s if s.is_terminal() => {
                return Err(EngineError::Invalid(format!(
                    "task #{id} has already ended ({s}); nothing to cancel"
                )))
            }
            TaskState::Queued => {
                task.cancel_requested = true;
                task.error = Some("cancelled before it started".into());
                task.transition(TaskState::Cancelled)?;
                self.store.save(&task)?;
            }
            _ => {
                task.cancel_requested = true;
                self.store.save(&task)?;
                if let Some(container) = &task.container_id {
                    self.sandbox.stop(container).await?;
                }
            }
        }
        drop(lock);
        self.tick().await?;
        // Another front-end (or another tick of this one) may be finalizing it: the
        // answer is the task once it has ended.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let task = self.store.load(id)?;
            if task.state.is_terminal() || std::time::Instant::now() > deadline {
                return Ok(task);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            self.tick().await?;
        }
    }

    /// Removes a finished task: its container, workspace and record; the branch stays
    /// unless `delete_branch`.
    pub async fn remove(&self, id: TaskId, delete_branch: bool) -> Result<(), EngineError> {
        let _lock = self.lock().await?;
        let task = self.store.load(id)?;
        if !task.state.is_terminal() {
            return Err(EngineError::Invalid(format!(
                "task #{id} is {}; cancel it first (`handoff cancel {id}`)",
                task.state
            )));
        }
        if let Some(container) = &task.container_id {
            self.sandbox.remove(container).await?;
        }
        for turn in 1..=task.turns.len().max(1) {
            let name = match turn {
                1 => self.container_name(id),
                n => format!("{}-t{n}", self.container_name(id)),
            };
            self.sandbox.release_workspace(&name).await?;
            self.sandbox
                .release_workspace(&format!("{name}-setup"))
                .await?;
        }
        let repo = self.repo()?;
        if delete_branch {
            if let Ok(mut b) = repo.find_branch(&task.branch, git2::BranchType::Local) {
                b.delete().map_err(GitError::from)?;
            }
        }
        if let Ok(mut r) = repo.find_reference(&format!("refs/handoff/base/{id}")) {
            r.delete().map_err(GitError::from)?;
        }
        let detached = self.store.detach(id)?;
        drop(_lock);
        // A 200 000-file leftover takes a while to delete: not under the lock.
        if let Some(dir) = detached {
            crate::untrusted::remove_tree(&dir).map_err(|source| store::StoreError::Io {
                action: "remove",
                path: dir.clone(),
                source,
            })?;
        }
        Ok(())
    }

    /// Whether the task's last turn ended with its work only in its upper folder
    /// (the import failed: disk full, an error in the repository).
    pub fn needs_recovery(&self, task: &Task) -> bool {
        task.state.is_terminal()
            && task.claim.is_none()
            && task.turns.last().is_some_and(|t| {
                t.head_commit == task.head_commit
                    && t.error
                        .as_deref()
                        .is_some_and(|e| e.starts_with("could not bring the agent's work home"))
            })
            && self.store.upper_path(task.id).exists()
    }

    /// Brings home a task's work that an earlier import could not (once the cause is
    /// fixed): imports its kept upper folder as the task branch.
    pub async fn recover(&self, id: TaskId) -> Result<Task, EngineError> {
        {
            let _lock = self.lock().await?;
            let mut task = self.store.load(id)?;
            if !self.needs_recovery(&task) {
                return Err(EngineError::Invalid(format!(
                    "task #{id} has nothing to recover: {}",
                    match &task.head_commit {
                        Some(_) => format!("its work is on branch {}", task.branch),
                        None if !task.state.is_terminal() => format!("it is {}", task.state),
                        None => "it left no work".to_string(),
                    }
                )));
            }
            task.claim = Some(claim::Claim::mine());
            self.store.save(&task)?;
        }
        let task = self.store.load(id)?;
        let imported = self.import(&task).await;
        let saved = self
            .update_claimed(id, |t| {
                match &imported {
                    Ok(result) => {
                        result.apply_to(t);
                        t.error = None;
                        if let Some(last) = t.turns.last_mut() {
                            last.head_commit = t.head_commit.clone();
                            last.error = None;
                        }
                        t.warnings.push("recovered with `handoff recover`".into());
                    }
                    Err(e) => {
                        t.error = Some(format!(
                            "could not bring the agent's work home: {e}. Its files are kept in {}; \
                             fix the cause and run `handoff recover {id}` again",
                            self.store.upper_path(id).display()
                        ));
                    }
                }
                Ok(())
            })
            .await?;
        if imported.is_ok() {
            let _ = self.store.remove_scratch(id, true);
        }
        match imported {
            Ok(_) => Ok(saved.unwrap_or(self.store.load(id)?)),
            Err(e) => Err(EngineError::Git(e)),
        }
    }

    async fn lock(&self) -> Result<store::StoreLock, EngineError> {
        let store = self.store.clone();
        Ok(tokio::task::spawn_blocking(move || store.lock())
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))??)
    }

    /// Blocks until the task has ended, driving the schedule meanwhile and calling
    /// `progress` with the current record every time round (at least every 2 s).
    pub async fn wait(
        &self,
        id: TaskId,
        mut progress: impl FnMut(&Task),
    ) -> Result<Task, EngineError> {
        let mut follower: Option<tokio::task::JoinHandle<()>> = None;
        let result = loop {
            self.tick().await?;
            let task = self.store.load(id)?;
            progress(&task);
            if task.state.is_terminal() {
                break Ok(task);
            }
            match (&task.state, &task.container_id) {
                (TaskState::Running, Some(container)) => {
                    if follower.is_none() {
                        follower = Some(self.spawn_log_follower(&task).await);
                    }
                    // Wake on exit, or every few seconds to report elapsed time and to
                    // notice a cancel from another front-end.
                    let _ = tokio::time::timeout(
                        std::time::Duration::from_secs(2),
                        self.sandbox.wait(container),
                    )
                    .await;
                }
                _ => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            }
        };
        if let Some(f) = follower {
            f.abort();
        }
        result
    }

    /// Appends the running agent's output to the task log as it comes. The log is
    /// rewritten in full from the sandbox when the task is finalized, so this copy
    /// only needs to be live, not complete.
    async fn spawn_log_follower(&self, task: &Task) -> tokio::task::JoinHandle<()> {
        use futures_util::StreamExt;
        use std::io::Write;
        let Some(container) = task.container_id.clone() else {
            return tokio::spawn(async {});
        };
        let mut redactor = self.redactor_for(task).await;
        let mut stream = self.sandbox.follow_logs(&container);
        let path = self.store.log_path(task.id);
        tokio::spawn(async move {
            let Ok(mut file) = std::fs::File::create(&path) else {
                return;
            };
            while let Some(Ok(chunk)) = stream.next().await {
                let _ = file.write_all(&redactor.push(&chunk));
            }
            let _ = file.write_all(&redactor.finish());
        })
    }
}

/// Text with a NUL byte cannot reach a program (argv and the environment end at
/// NUL): say so, instead of letting the container engine fail obscurely.
fn refuse_nul(what: &str, text: &str) -> Result<(), EngineError> {
    match text.find('\0') {
        Some(at) => Err(EngineError::Invalid(format!(
            "the {what} contains a NUL byte (at byte {at}), which cannot be passed to an agent; \
             remove it and try again"
        ))),
        None => Ok(()),
    }
}

/// One turn's output, for logs and transcripts.
#[derive(Debug, Clone)]
pub struct TurnLog {
    pub prompt: String,
    pub output: Vec<u8>,
    /// The check that ran after this turn's agent.
    pub check: Option<task::CheckRun>,
}

/// The check's result after a turn's output; its output only when it failed.
fn check_section(check: &task::CheckRun) -> String {
    if check.passed {
        return format!("\n── check `{}` passed ──\n", check.command);
    }
    format!(
        "\n── check `{}` FAILED (exit code {}) ──\n{}\n",
        check.command, check.exit_code, check.output
    )
}

/// The line that separates turns in logs and transcripts.
fn turn_heading(n: usize, prompt: &str) -> String {
    let first = prompt.lines().next().unwrap_or("");
    let short: String = first.chars().take(72).collect();
    let more = if short.len() < prompt.trim_end().len() {
        "…"
    } else {
        ""
    };
    let label = if n == 1 { "task" } else { "follow-up" };
    format!("\n── turn {n} ({label}): {short}{more} ──\n")
}

fn read_or_empty(path: &Path) -> Result<Vec<u8>, StoreError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(StoreError::Io {
            action: "read",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Whole milliseconds since `start`.
pub(crate) fn ms_since(start: std::time::Instant) -> u64 {
    start.elapsed().as_millis() as u64
}

/// The identity Handoff commits under when the agent did not commit itself.
pub fn handoff_signature(role: &str) -> Result<git2::Signature<'static>, GitError> {
    Ok(git2::Signature::now(
        &format!("Handoff ({role})"),
        "handoff@localhost",
    )?)
}

/// The agents named in `spec`: one, or several comma-separated (`claude,codex`);
/// `[None]` (the default agent) when none is named.
pub fn agent_list(spec: Option<&str>) -> Vec<Option<String>> {
    match spec {
        Some(list) => list
            .split(',')
            .map(|a| Some(a.trim().to_string()).filter(|a| !a.is_empty()))
            .collect(),
        None => vec![None],
    }
}

/// Most attempts one `run --attempts` may start.
pub const MAX_ATTEMPTS: usize = 16;

/// Longest prompt accepted in the environment variable; longer ones reach the agent
/// only through the prompt file.
pub const MAX_PROMPT_ENV_BYTES: usize = MAX_ARG_BYTES - "HANDOFF_PROMPT=".len();
