//! Reconciliation and scheduling: the one loop every front-end runs.
//!
//! [`Engine::tick`] takes the repository lock, settles every task that was active
//! (its container may have ended while no front-end watched), then starts queued
//! tasks while fewer than `max_parallel` are active. Because a task is only started
//! or finalized under the lock, and the record is re-read under it, two front-ends
//! racing never start or finalize the same task twice.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use git2::{Oid, Repository};

use super::store::StoreLock;
use super::task::{Task, TaskId, TaskState};
use super::{ms_since, Engine, EngineError, MAX_PROMPT_ENV_BYTES};
use crate::agents::{AgentProfile, CACHE_ENV, LOCKFILES, PROMPT_FILE_IN_SANDBOX, RUNNER};
use crate::git::{workspace, GitError};
use crate::sandbox::{Sandbox, SandboxError, SandboxSpec, SandboxStatus};

/// The uid an agent runs as when the repository belongs to root: agents never run as
/// root. 65534 is `nobody` on Linux distributions.
const FALLBACK_AGENT_UID: u32 = 65534;

impl<S: Sandbox> Engine<S> {
    /// Settles active tasks and starts queued ones. Cheap when nothing changed.
    pub async fn tick(&self) -> Result<(), EngineError> {
        let lock = self.lock().await?;
        for task in self.store.list()? {
            if task.state.is_active() {
                self.reconcile_one(&lock, task.id).await?;
            }
        }
        let tasks = self.store.list()?;
        let active = tasks.iter().filter(|t| t.state.is_active()).count();
        let free = self.config.max_parallel.saturating_sub(active);
        let queued: Vec<TaskId> = tasks
            .iter()
            .filter(|t| t.state == TaskState::Queued)
            .map(|t| t.id)
            .take(free)
            .collect();
        for id in queued {
            self.start_task(&lock, id).await?;
        }
        Ok(())
    }

    /// Brings one task's record in line with its container. Call with the lock held.
    pub(super) async fn reconcile_one(
        &self,
        lock: &StoreLock,
        id: TaskId,
    ) -> Result<(), EngineError> {
        let mut task = self.store.load(id)?;
        if task.state == TaskState::Starting {
            // Starts happen under the lock, so a task seen starting here lost its
            // front-end half-way. Adopt its container if it got one, else requeue.
            match self.sandbox.find(&self.turn_container_name(&task)).await? {
                Some(container) => {
                    task.container_id = Some(container);
                    task.transition(TaskState::Running)?;
                    self.store.save(&task)?;
                }
                None => {
                    task.transition(TaskState::Queued)?;
                    self.store.save(&task)?;
                    return Ok(());
                }
            }
        }
        if !matches!(task.state, TaskState::Running | TaskState::Finalizing) {
            return Ok(());
        }
        let status = match &task.container_id {
            Some(c) => self.sandbox.status(c).await?,
            None => SandboxStatus::Missing,
        };
        if status == SandboxStatus::Running && task.state == TaskState::Running {
            return Ok(());
        }
        self.finalize(lock, task, status).await
    }

    async fn start_task(&self, _lock: &StoreLock, id: TaskId) -> Result<(), EngineError> {
        let mut task = self.store.load(id)?;
        if task.state != TaskState::Queued {
            return Ok(());
        }
        let profile = match self.config.profile(&task.agent) {
            Ok(p) => p.clone(),
            Err(message) => return self.fail_at_start(task, message),
        };
        if let Err(message) = profile.check_credentials(|name| std::env::var(name).ok()) {
            return self.fail_at_start(task, message);
        }
        task.transition(TaskState::Starting)?;
        self.store.save(&task)?;
        match self.launch(&mut task, &profile).await {
            Ok(container) => {
                task.container_id = Some(container);
                task.transition(TaskState::Running)?;
                self.store.save(&task)?;
                tracing::info!(task_id = %id, "agent started");
                Ok(())
            }
            Err(e @ EngineError::Sandbox(SandboxError::Unreachable { .. })) => {
                // Not the task's fault: it waits in the queue for Docker to come back.
                task.transition(TaskState::Queued)?;
                self.store.save(&task)?;
                Err(e)
            }
            Err(e) => {
                let _ = self.store.remove_workspace(id);
                self.fail_at_start(task, e.to_string())
            }
        }
    }

    fn fail_at_start(&self, mut task: Task, message: String) -> Result<(), EngineError> {
        tracing::warn!(task_id = %task.id, %message, "task failed to start");
        if task.state == TaskState::Queued {
            task.transition(TaskState::Starting)?;
        }
        task.error = Some(message);
        task.transition(TaskState::Failed)?;
        self.store.save(&task)?;
        Ok(())
    }

    /// Workspace, container spec, container. Returns the container id.
    async fn launch(&self, task: &mut Task, profile: &AgentProfile) -> Result<String, EngineError> {
        let clock = std::time::Instant::now();
        self.sandbox.check_image(&profile.image).await?;
        let argv = match &task.reply {
            Some(reply) => profile.follow_up_argv(reply, task.session_id.as_deref()),
            None => profile.argv(&task.prompt),
        }
        .map_err(EngineError::Invalid)?;
        let steps = self.config.steps_for(profile);
        let wrapped = steps.setup.is_some() || steps.check.is_some();
        let argv = if wrapped {
            let mut runner: Vec<String> = ["sh", "-c", RUNNER, "handoff-runner"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            runner.extend(argv);
            runner
        } else {
            argv
        };

        let (uid, gid) = agent_ids(&self.workdir)?;
        let ws_path = self.store.workspace_path(task.id);
        let workdir = self.workdir.clone();
        let branch = task.branch.clone();
        // A follow-up continues from where the branch is; the first turn from the snapshot.
        let start = match (&task.reply, &task.head_commit) {
            (Some(_), Some(head)) => head,
            _ => &task.base_commit,
        };
        let base = Oid::from_str(start).map_err(GitError::from)?;
        let home = self.store.home_path(task.id);
        let out_dir = self.store.task_dir(task.id).join("out");
        let cache_dir = match wrapped {
            true => Some(self.cache_dir(base)?),
            false => None,
        };
        let dirs = (home.clone(), out_dir.clone(), cache_dir.clone());
        let ws = tokio::task::spawn_blocking(move || -> Result<_, GitError> {
            let (home, out_dir, cache_dir) = dirs;
            // The agent owns its HOME; files it made in earlier turns stay.
            agent_dir(&home, uid, gid, false)?;
            // Results of this turn's setup and check only.
            agent_dir(&out_dir, uid, gid, true)?;
            if let Some(cache) = &cache_dir {
                agent_dir(cache, uid, gid, false)?;
            }
            let user = Repository::open(&workdir)?;
            let ws = workspace::create(&user, &ws_path, &branch, base)?;
            let owner = std::fs::metadata(&ws.path)
                .map_err(|source| GitError::Read {
                    path: ws.path.clone(),
                    source,
                })?
                .uid();
            if owner != uid {
                workspace::chown_tree(&ws.path, uid, gid)?;
            }
            Ok(ws)
        })
        .await
        .map_err(|e| EngineError::Internal(e.to_string()))??;
        task.phases_ms.insert("workspace".into(), ms_since(clock));
        let clock = std::time::Instant::now();

        let prompt_file = self.store.prompt_path(task.id);
        std::fs::set_permissions(&prompt_file, std::fs::Permissions::from_mode(0o644)).map_err(
            |source| GitError::Write {
                path: prompt_file.clone(),
                source,
            },
        )?;

        let mut env = vec![
            ("HANDOFF_TASK_ID".to_string(), task.id.to_string()),
            (
                "HANDOFF_PROMPT_FILE".to_string(),
                PROMPT_FILE_IN_SANDBOX.to_string(),
            ),
            (
                "GIT_AUTHOR_NAME".into(),
                format!("Handoff ({})", task.agent),
            ),
            ("GIT_AUTHOR_EMAIL".into(), "handoff@localhost".into()),
            (
                "GIT_COMMITTER_NAME".into(),
                format!("Handoff ({})", task.agent),
            ),
            ("GIT_COMMITTER_EMAIL".into(), "handoff@localhost".into()),
            // The borrowed object folder belongs to another uid; git must not refuse it.
            ("GIT_CONFIG_COUNT".into(), "1".into()),
            ("GIT_CONFIG_KEY_0".into(), "safe.directory".into()),
            ("GIT_CONFIG_VALUE_0".into(), "*".into()),
        ];
        let prompt = task.turn_prompt();
        if prompt.len() <= MAX_PROMPT_ENV_BYTES {
            env.push(("HANDOFF_PROMPT".into(), prompt.to_string()));
        }
        for (name, value) in &profile.set_env {
            env.push((name.clone(), value.clone()));
        }
        if let Some(setup) = &steps.setup {
            env.push(("HANDOFF_SETUP".into(), setup.clone()));
        }
        if let Some(check) = &steps.check {
            env.push(("HANDOFF_CHECK".into(), check.clone()));
        }
        if wrapped {
            for (name, value) in CACHE_ENV {
                env.push((name.to_string(), value.to_string()));
            }
        }
        for name in &profile.env {
            if let Ok(value) = std::env::var(name) {
                env.push((name.clone(), value));
            }
        }
        let labels = BTreeMap::from([
            ("handoff.task".to_string(), task.id.to_string()),
            (
                "handoff.repo".to_string(),
                self.git_dir.display().to_string(),
            ),
            ("handoff.agent".to_string(), task.agent.clone()),
        ]);
        let spec = SandboxSpec {
            name: self.turn_container_name(task),
            image: profile.image.clone(),
            argv,
            env,
            labels,
            uid,
            gid,
            workspace: ws.path,
            shared_objects: ws.shared_objects,
            home,
            out_dir,
            cache_dir,
            prompt_file,
            network: profile.network,
            memory_bytes: profile.memory.map(|m| m.0),
            cpus: profile.cpus,
            pids: profile.pids,
        };
        let started = self.sandbox.start(&spec).await;
        task.phases_ms.insert("container".into(), ms_since(clock));
        match started {
            Ok(id) => Ok(id),
            Err(SandboxError::NameConflict { name }) => self
                .sandbox
                .find(&name)
                .await?
                .ok_or_else(|| EngineError::Internal(format!("container {name} vanished"))),
            Err(e) => Err(e.into()),
        }
    }

    /// `handoff-<repo key>-<id>`: unique per repository and task on one engine.
    pub fn container_name(&self, id: TaskId) -> String {
        let key = Oid::hash_object(
            git2::ObjectType::Blob,
            self.git_dir.as_os_str().as_encoded_bytes(),
        )
        .map(|o| o.to_string()[..10].to_string())
        .unwrap_or_else(|_| "repo".into());
        format!("handoff-{key}-{id}")
    }

    /// The container of the task's current turn: [`Engine::container_name`] for the
    /// first, with `-t<n>` after it for follow-ups, so a previous turn's container
    /// that was not removed is never mistaken for this one's.
    pub fn turn_container_name(&self, task: &Task) -> String {
        match task.turn_number() {
            1 => self.container_name(task.id),
            n => format!("{}-t{n}", self.container_name(task.id)),
        }
    }
}

impl<S: Sandbox> Engine<S> {
    /// The tool cache of this repository for the lockfiles at `commit`: tasks whose
    /// lockfiles are the same share downloads (`<git-dir>/handoff/cache/<key>`).
    fn cache_dir(&self, commit: Oid) -> Result<std::path::PathBuf, EngineError> {
        let repo = Repository::open(&self.workdir).map_err(GitError::from)?;
        let tree = repo
            .find_commit(commit)
            .and_then(|c| c.tree())
            .map_err(GitError::from)?;
        let mut key = String::new();
        for name in LOCKFILES {
            if let Some(entry) = tree.get_name(name) {
                key.push_str(&format!("{name}:{}\n", entry.id()));
            }
        }
        let hash = Oid::hash_object(git2::ObjectType::Blob, key.as_bytes())
            .map_err(GitError::from)?
            .to_string();
        let name = if key.is_empty() {
            "no-lockfile".to_string()
        } else {
            hash[..16].to_string()
        };
        Ok(self.store.root().join("cache").join(name))
    }
}

/// Creates `path` for the agent (emptied first when `fresh`) and gives it to `uid`.
fn agent_dir(path: &std::path::Path, uid: u32, gid: u32, fresh: bool) -> Result<(), GitError> {
    let write = |source| GitError::Write {
        path: path.to_path_buf(),
        source,
    };
    if fresh && path.exists() {
        std::fs::remove_dir_all(path).map_err(write)?;
    }
    std::fs::create_dir_all(path).map_err(write)?;
    if std::fs::metadata(path).map(|m| m.uid()).ok() != Some(uid) {
        std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(write)?;
    }
    Ok(())
}

/// The uid and gid the agent runs as: the repository owner's, never root.
fn agent_ids(workdir: &std::path::Path) -> Result<(u32, u32), GitError> {
    let meta = std::fs::metadata(workdir).map_err(|source| GitError::Read {
        path: workdir.to_path_buf(),
        source,
    })?;
    if meta.uid() == 0 {
        Ok((FALLBACK_AGENT_UID, FALLBACK_AGENT_UID))
    } else {
        Ok((meta.uid(), meta.gid()))
    }
}
