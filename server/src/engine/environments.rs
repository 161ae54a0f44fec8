//! The engine's side of environments ([`super::envs`]): which environment a turn
//! starts from, keeping what a setup left, `handoff env warm`, and listing and
//! removing them.

use std::path::Path;

use chrono::Utc;
use git2::{Oid, Repository};

use super::envs::{self, EnvEntry, EnvError, EnvInfo, Envs, KeyInputs, Saved};
use super::scheduler::{agent_dir, agent_ids};
use super::task::{Blocked, EnvUse, Task, TaskState};
use super::{Engine, EngineError, NewTask};
use crate::agents::AgentProfile;
use crate::git::GitError;
use crate::sandbox::Sandbox;

/// A HOME an environment starts agents with may hold this much.
const HOME_LIMIT: u64 = 1 << 30;

impl From<EnvError> for EngineError {
    fn from(e: EnvError) -> Self {
        match e {
            EnvError::Io(m) => EngineError::Internal(m),
            other => EngineError::Invalid(other.to_string()),
        }
    }
}

/// Gives a first turn's empty HOME what the environment's setup left in its HOME.
pub(super) fn seed_home(home: &Path, from: &Path, owner: (u32, u32)) -> Result<(), GitError> {
    let empty = std::fs::read_dir(home)
        .map(|mut d| d.next().is_none())
        .unwrap_or(false);
    if !empty {
        return Ok(());
    }
    let write = |e: String| GitError::Untrusted(format!("cannot prepare the agent's HOME: {e}"));
    std::fs::remove_dir(home).map_err(|e| write(e.to_string()))?;
    crate::untrusted::copy_tree(from, home, Some(owner), HOME_LIMIT)
        .map_err(|e| write(e.to_string()))?;
    Ok(())
}

impl<S: Sandbox> Engine<S> {
    /// This repository's environments.
    pub fn envs(&self) -> Envs {
        Envs::new(self.store.root().join("envs"))
    }

    /// What the current turn of `task` would make with `profile`'s setup: its key,
    /// and what it is made from. `None` when the profile has no setup or does not
    /// keep it (`setup_snapshot = false`).
    async fn environment_inputs(
        &self,
        task: &Task,
        profile: &AgentProfile,
    ) -> Result<Option<EnvInfo>, EngineError> {
        let steps = self.config.steps_for(profile);
        let Some(setup) = steps.setup.filter(|_| steps.snapshot != Some(false)) else {
            return Ok(None);
        };
        let image = self.image_for(profile);
        let image_id = self.sandbox.check_image(&image).await?;
        let start = Oid::from_str(task.turn_start()).map_err(GitError::from)?;
        let lockfiles = self.lockfiles(start)?;
        let (uid, _) = agent_ids(&self.workdir)?;
        let key = envs::key(&KeyInputs {
            image_id: &image_id,
            setup: &setup,
            lockfiles: &lockfiles,
            uid,
        });
        Ok(Some(EnvInfo {
            key,
            profile: profile.name.clone(),
            image,
            image_id,
            setup,
            lockfiles,
            uid,
            commit: start.to_string(),
            task: task.id.0,
            created_at: Utc::now(),
            files: 0,
            bytes: 0,
            home_files: 0,
            home_bytes: 0,
        }))
    }

    /// The environment the current turn of `task` starts from (`reused`), or the one
    /// its setup will make; `None` without a setup to keep. A follow-up turn only
    /// uses an environment: its HOME holds the earlier turns' work, never kept.
    pub(super) async fn environment_for(
        &self,
        task: &Task,
        profile: &AgentProfile,
    ) -> Result<Option<EnvUse>, EngineError> {
        let Some(info) = self.environment_inputs(task, profile).await? else {
            return Ok(None);
        };
        let envs = self.envs();
        let reused = envs.get(&info.key).is_some();
        if reused {
            envs.touch(&info.key);
        } else if task.turn_number() > 1 && !task.warm {
            return Ok(None);
        }
        Ok(Some(EnvUse {
            key: info.key,
            reused,
            layered: reused,
            not_kept: None,
        }))
    }

    /// After a turn's setup ended well (its container and volume gone): keeps what it
    /// left as the environment the task's record names, and gives the agent a fresh
    /// upper folder on top of it.
    pub(super) async fn keep_environment(
        &self,
        task: &Task,
        profile: &AgentProfile,
    ) -> Result<Saved, EngineError> {
        let Some(planned) = &task.environment else {
            return Ok(Saved::NotKept("no environment was planned".into()));
        };
        let Some(info) = self.environment_inputs(task, profile).await? else {
            return Ok(Saved::NotKept(
                "the profile no longer keeps its setup".into(),
            ));
        };
        if info.key != planned.key {
            return Ok(Saved::NotKept(
                "the image or the setup changed while the setup ran".into(),
            ));
        }
        let envs = self.envs();
        let store = self.store.clone();
        let workdir = self.workdir.clone();
        let id = task.id;
        let in_use = self.environments_in_use()?;
        tokio::task::spawn_blocking(move || -> Result<Saved, EngineError> {
            let repo = Repository::open(&workdir).map_err(GitError::from)?;
            let commit = Oid::from_str(&info.commit).map_err(GitError::from)?;
            let tree = repo
                .find_commit(commit)
                .and_then(|c| c.tree())
                .map_err(GitError::from)?;
            let uid = info.uid;
            let saved = envs.save(info, &store.upper_path(id), &store.home_path(id), &tree)?;
            if matches!(saved, Saved::Kept(_)) {
                let (_, gid) = agent_ids(&workdir)?;
                agent_dir(&store.upper_path(id), uid, gid, true)?;
                let work = store.work_path(id);
                crate::untrusted::remove_tree(&work)
                    .and_then(|()| std::fs::create_dir_all(&work))
                    .map_err(|source| GitError::Write { path: work, source })?;
            }
            // Environments nobody started from for a while go.
            envs.prune(envs::KEEP_UNUSED, &in_use);
            Ok(saved)
        })
        .await
        .map_err(|e| EngineError::Internal(e.to_string()))?
    }

    /// Keys of the environments active tasks run from.
    fn environments_in_use(&self) -> Result<Vec<String>, EngineError> {
        Ok(self
            .store
            .list()?
            .into_iter()
            .filter(|t| t.state.is_active())
            .filter_map(|t| t.environment.map(|e| e.key))
            .collect())
    }

    /// Ends a warm-up task (`handoff env warm`) whose setup ended: done when its
    /// environment was kept, failed (saying why) when not. The agent never runs.
    pub(super) async fn finish_warm(
        &self,
        task: Task,
        blocked: Vec<Blocked>,
    ) -> Result<(), EngineError> {
        let id = task.id;
        let environment = task.environment.clone();
        let error = match &environment {
            Some(e) if e.layered => None,
            Some(e) => Some(format!(
                "the setup ran, but its environment was not kept: {}",
                e.not_kept.as_deref().unwrap_or("no reason given")
            )),
            None => Some("the profile has no setup to keep".into()),
        };
        self.update_claimed(id, |t| {
            t.environment = environment;
            t.blocked.extend(blocked);
            t.container_id = None;
            t.error = error.clone();
            if t.state == TaskState::Starting {
                t.transition(TaskState::Running)?;
            }
            t.transition(TaskState::Finalizing)?;
            t.transition(match error {
                None => TaskState::Done,
                Some(_) => TaskState::Failed,
            })?;
            t.turns.push(t.as_turn());
            Ok(())
        })
        .await?;
        let _ = self.store.remove_scratch(id, true);
        let _ = crate::untrusted::remove_tree(&self.store.out_path(id));
        Ok(())
    }

    /// Queues a task that only runs `agent`'s setup on the working tree as it is and
    /// keeps its environment (`handoff env warm`).
    pub async fn warm(&self, agent: Option<&str>) -> Result<Task, EngineError> {
        let profile = self.profile(agent)?.clone();
        if self.config.steps_for(&profile).setup.is_none() {
            return Err(EngineError::Invalid(format!(
                "profile `{}` has no setup: there is no environment to make (set `setup` in .handoff.toml)",
                profile.name
            )));
        }
        self.create_task(NewTask {
            prompt: "make the environment (handoff env warm)".into(),
            title: Some("warm the environment".into()),
            agent: Some(profile.name.clone()),
            origin: None,
            warm: true,
        })
        .await
    }

    /// This repository's environments, most recently used first.
    pub fn env_list(&self) -> Vec<EnvEntry> {
        self.envs().list()
    }

    /// Removes environment `key` (a unique prefix of it will do), unless an active
    /// task runs from it.
    pub async fn env_remove(&self, key: &str) -> Result<String, EngineError> {
        let matches: Vec<String> = self
            .env_list()
            .into_iter()
            .map(|e| e.info.key)
            .filter(|k| !key.is_empty() && k.starts_with(key))
            .collect();
        let key = match matches.as_slice() {
            [one] => one.clone(),
            [] => return Err(EnvError::NotFound(key.to_string()).into()),
            _ => {
                return Err(EngineError::Invalid(format!(
                    "`{key}` names {} environments; give more of the key",
                    matches.len()
                )))
            }
        };
        let _lock = self.lock().await?;
        if let Some(t) =
            self.store.list()?.into_iter().find(|t| {
                t.state.is_active() && t.environment.as_ref().is_some_and(|e| e.key == key)
            })
        {
            return Err(EnvError::InUse { key, task: t.id.0 }.into());
        }
        self.envs().remove(&key)?;
        Ok(key)
    }
}
