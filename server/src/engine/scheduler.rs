//! Reconciliation and scheduling: the one loop every front-end runs.
//!
//! [`Engine::tick`] takes the repository lock only to decide and to claim: it settles
//! every task that was active (its container may have ended while no front-end
//! watched) and claims queued tasks while fewer than `max_parallel` are active. The
//! slow work — preparing a workspace, importing a result — then runs without the lock,
//! under the task's [`Claim`], and takes the lock again only to save the outcome. Two
//! front-ends racing never start or finalize the same task twice: a claim is taken
//! under the lock, and a live claim is respected.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use futures_util::StreamExt;
use git2::{Oid, Repository};

use super::claim::Claim;
use super::environments;
use super::envs::Saved;
use super::task::{RunPhase, StopReason, Task, TaskId, TaskState};
use super::{ms_since, Engine, EngineError, MAX_PROMPT_ENV_BYTES};
use crate::agents::credentials::{self, CredentialPlan};
use crate::agents::{
    AgentProfile, Network, CACHE_ENV, LOCKFILES, PROMPT_FILE_IN_SANDBOX, RUNNER, SETUP_RUNNER,
};
use crate::git::layer::{self, Whiteouts};
use crate::git::{base, GitError};
use crate::sandbox::{
    OverlaySpec, Sandbox, SandboxError, SandboxNetwork, SandboxSpec, SandboxStatus,
};

/// The uid an agent runs as when the repository belongs to root: agents never run as
/// root. 65534 is `nobody` on Linux distributions.
const FALLBACK_AGENT_UID: u32 = 65534;

/// How many starts or finalizes of different tasks one tick runs at a time.
const JOBS_AT_ONCE: usize = 8;

#[derive(Clone, Copy)]
enum Phase {
    Settle,
    Start,
}

/// How often a running task's disk use is measured.
const DISK_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// How long a base checkout nobody starts a task on is kept.
const BASE_KEEP: std::time::Duration = std::time::Duration::from_secs(3 * 24 * 3600);

/// Work a tick claimed, to do without the lock.
pub(super) enum Job {
    Start(Task),
    /// The turn's setup succeeded: start its agent.
    Advance(Task),
    Finalize(Task, SandboxStatus),
}

impl<S: Sandbox> Engine<S> {
    /// Settles active tasks and starts queued ones. Cheap when nothing changed.
    pub async fn tick(&self) -> Result<(), EngineError> {
        self.tick_settling(usize::MAX).await
    }

    /// A tick that claims at most `max_settle` ended turns to settle (finalize, or
    /// go on to the agent): what a command that only shows state runs, so that it
    /// answers in about the time of one finalize when many tasks ended at once (40
    /// at once took 16 s to settle one by one). The rest wait for the next tick of any
    /// front-end; nothing is claimed that this tick does not finish.
    pub async fn tick_settling(&self, max_settle: usize) -> Result<(), EngineError> {
        let mut first_error = None;
        // Settle what ended, then start what fits: a slot freed by a finalized task
        // is used in the same tick.
        for phase in [Phase::Settle, Phase::Start] {
            let jobs = {
                let _lock = self.lock().await?;
                match phase {
                    Phase::Settle => self.claim_ended(max_settle).await?,
                    Phase::Start => self.claim_queued()?,
                }
            };
            // Jobs of different tasks run side by side: most of a start or a finalize
            // is waiting for the engine, and the git work is per task.
            let results: Vec<Result<(), EngineError>> = futures_util::stream::iter(jobs)
                .map(|job| async move {
                    match job {
                        Job::Start(task) => self.start_task(task).await,
                        Job::Advance(task) => self.advance(task).await,
                        Job::Finalize(task, status) => self.finalize(task, status).await,
                    }
                })
                .buffer_unordered(JOBS_AT_ONCE)
                .collect()
                .await;
            for done in results {
                if let Err(e) = done {
                    first_error.get_or_insert(e);
                }
            }
        }
        self.store.empty_trash();
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Reconciles every active task and returns the ones to finalize; releases what
    /// ended turns left when their front-end died before it could. Call with the lock.
    async fn claim_ended(&self, max: usize) -> Result<Vec<Job>, EngineError> {
        let mut jobs = Vec::new();
        for task in self.store.unsettled()? {
            if task.state.is_active() {
                if jobs.len() >= max {
                    // Left as it is for a later tick: nothing claimed.
                    continue;
                }
                if let Some(job) = self.reconcile_one(task).await? {
                    jobs.push(job);
                }
            } else {
                self.release_if_left(&task).await;
            }
        }
        Ok(jobs)
    }

    /// Claims queued tasks while fewer than `max_parallel` are active. Call with the
    /// lock.
    fn claim_queued(&self) -> Result<Vec<Job>, EngineError> {
        let tasks = self.store.unfinished()?;
        let active = tasks.iter().filter(|t| t.state.is_active()).count();
        let free = self.config.max_parallel.saturating_sub(active);
        let mut jobs = Vec::new();
        for mut task in tasks
            .into_iter()
            .filter(|t| t.state == TaskState::Queued)
            .take(free)
        {
            task.transition(TaskState::Starting)?;
            task.claim = Some(Claim::mine());
            self.store.save(&task)?;
            jobs.push(Job::Start(task));
        }
        Ok(jobs)
    }

    /// Brings one task's record in line with its container, and claims it for
    /// finalizing when its agent has ended. Call with the lock held.
    pub(super) async fn reconcile_one(&self, mut task: Task) -> Result<Option<Job>, EngineError> {
        let claimed_elsewhere = task.claim.as_ref().is_some_and(Claim::is_alive);
        match task.state {
            TaskState::Starting if claimed_elsewhere => return Ok(None),
            TaskState::Starting => {
                // Its front-end died half-way. Adopt its container if it got one, else
                // queue it again.
                let mut found = None;
                for phase in [RunPhase::Agent, RunPhase::Setup] {
                    if found.is_none() {
                        let name = self.phase_container_name(&task, phase);
                        found = self.sandbox.find(&name).await?.map(|c| (c, phase));
                    }
                }
                match found {
                    Some((container, phase)) => {
                        task.container_id = Some(container);
                        task.phase = Some(phase);
                        task.claim = None;
                        task.transition(TaskState::Running)?;
                        self.store.save(&task)?;
                    }
                    None => {
                        task.claim = None;
                        task.transition(TaskState::Queued)?;
                        self.store.save(&task)?;
                        return Ok(None);
                    }
                }
            }
            TaskState::Finalizing | TaskState::Running if claimed_elsewhere => return Ok(None),
            _ => {}
        }
        let status = match &task.container_id {
            Some(c) => self.sandbox.status(c).await?,
            None => SandboxStatus::Missing,
        };
        if status == SandboxStatus::Running && task.state == TaskState::Running {
            let Some(reason) = self.limit_reached(&task).await else {
                return Ok(None);
            };
            tracing::warn!(task_id = %task.id, ?reason, "stopping the agent: a limit was reached");
            task.stopped_for = Some(reason);
            self.store.save(&task)?;
            if let Some(c) = &task.container_id {
                self.sandbox.stop(c).await?;
            }
            return Ok(None);
        }
        let setup_ended = task.state == TaskState::Running
            && task.phase == Some(RunPhase::Setup)
            && matches!(status, SandboxStatus::Exited { code: 0, .. })
            && !task.cancel_requested
            && task.stopped_for.is_none();
        task.claim = Some(Claim::mine());
        if setup_ended {
            // The agent's phase follows; a failed setup ends the turn (finalize says why).
            self.store.save(&task)?;
            return Ok(Some(Job::Advance(task)));
        }
        if task.state != TaskState::Finalizing {
            task.transition(TaskState::Finalizing)?;
        }
        self.store.save(&task)?;
        Ok(Some(Job::Finalize(task, status)))
    }

    /// The limit a running task has gone past, if any: its profile's `timeout`, or its
    /// `disk_limit` (checked at most every few seconds per task: it walks the folders).
    async fn limit_reached(&self, task: &Task) -> Option<StopReason> {
        if task.stopped_for.is_some() {
            return None;
        }
        let limits = self
            .config
            .profile(&task.agent)
            .map(|p| p.limits)
            .unwrap_or_default();
        if let Some(secs) = task.elapsed_secs() {
            if secs as u64 > limits.timeout_secs {
                return Some(StopReason::Timeout {
                    seconds: limits.timeout_secs,
                });
            }
        }
        {
            let mut checked = self.disk_checked.lock().unwrap_or_else(|e| e.into_inner());
            let now = std::time::Instant::now();
            if checked
                .get(&task.id)
                .is_some_and(|t| now.duration_since(*t) < DISK_CHECK_EVERY)
            {
                return None;
            }
            checked.insert(task.id, now);
        }
        let mut used = self.disk_used(task.id, limits.disk_bytes);
        if let Some(container) = &task.container_id {
            // A shipped workspace's writes are on the engine until collected.
            if let Ok(Some(written)) = self.sandbox.written_bytes(container).await {
                used += written;
            }
        }
        if used > limits.disk_bytes {
            return Some(StopReason::Disk {
                limit_bytes: limits.disk_bytes,
                used_bytes: used,
            });
        }
        self.over_budget(task, &limits).await
    }

    /// The budget (`max_turns`, `max_cost_usd`) the task has gone past, counting its
    /// ended turns and the running one's transcript so far.
    async fn over_budget(&self, task: &Task, limits: &crate::agents::Limits) -> Option<StopReason> {
        if limits.max_turns.is_none() && limits.max_cost_usd.is_none() {
            return None;
        }
        let format = self.config.profile(&task.agent).ok()?.output_format()?;
        let container = task.container_id.as_ref()?;
        let log = self.sandbox.logs(container).await.ok()?;
        let now = crate::agents::budget::spent(&format.parse(&String::from_utf8_lossy(&log)));
        budget_passed(
            limits,
            task.spent.turns + now.turns,
            task.spent.cost_usd + now.cost_usd,
        )
    }

    /// Bytes in the task's writable folders (what the agent wrote to its workspace, its
    /// HOME, its reports), counted up to a little past `stop_after`.
    fn disk_used(&self, id: TaskId, stop_after: u64) -> u64 {
        use crate::untrusted::{EntryKind, UntrustedTree, Visit, WalkLimits};
        let mut used = 0u64;
        for dir in [
            self.store.upper_path(id),
            self.store.home_path(id),
            self.store.out_path(id),
        ] {
            let Ok(Some(tree)) = UntrustedTree::open(&dir) else {
                continue;
            };
            let _ = tree.walk(WalkLimits::default(), |e| {
                if used > stop_after {
                    return Visit::Skip;
                }
                if let EntryKind::File { size, .. } = e.kind {
                    used += size;
                }
                Visit::Descend
            });
        }
        used
    }

    /// Loads task `id` under the lock, lets `change` edit it and saves it, unless
    /// another front-end has taken over the work this one claimed (then `change` is
    /// not called and `Ok(None)` returned).
    pub(super) async fn update_claimed(
        &self,
        id: TaskId,
        change: impl FnOnce(&mut Task) -> Result<(), EngineError>,
    ) -> Result<Option<Task>, EngineError> {
        let _lock = self.lock().await?;
        let mut task = self.store.load(id)?;
        if !task.claim.as_ref().is_some_and(Claim::is_mine) {
            tracing::warn!(task_id = %id, "another front-end took this task over");
            return Ok(None);
        }
        task.claim = None;
        change(&mut task)?;
        self.store.save(&task)?;
        Ok(Some(task))
    }

    /// Prepares the workspace and starts the agent of a task this front-end claimed.
    async fn start_task(&self, task: Task) -> Result<(), EngineError> {
        let id = task.id;
        super::fault::point("start:after-claim");
        let profile = match self.config.profile(&task.agent) {
            Ok(p) => p.clone(),
            Err(message) => return self.fail_at_start(id, message).await,
        };
        if let Err(message) = profile.check_credentials(|name| std::env::var(name).ok()) {
            return self.fail_at_start(id, message).await;
        }
        if profile.network == Network::Host && !self.config.allow_host_network {
            return self
                .fail_at_start(
                    id,
                    format!(
                        "profile `{}` asks for network \"host\", which gives the agent this \
                         machine's own services (everything listening on localhost, abstract \
                         sockets) with your uid; Handoff refuses it unless your own config \
                         allows it: add `allow_host_network = true` to {}, or use network \
                         \"egress\" with an `allow` list",
                        profile.name,
                        crate::config::Config::user_path()
                            .map(|p| p.display().to_string())
                            .unwrap_or_else(|| "~/.config/handoff/config.toml".into())
                    ),
                )
                .await;
        }
        let mut prepared = task.clone();
        if task.warm {
            // Already made: nothing to run.
            if let Ok(Some(env)) = self.environment_for(&task, &profile).await {
                if env.reused {
                    prepared.environment = Some(env);
                    return self.finish_warm(prepared, vec![]).await;
                }
            }
        }
        match self.launch(&mut prepared, &profile, true).await {
            Ok(container) => {
                let phases = prepared.phases_ms.clone();
                let saved = self
                    .update_claimed(id, |t| {
                        t.container_id = Some(container.clone());
                        t.phases_ms = phases;
                        t.workspace_base = prepared.workspace_base.clone();
                        t.phase = prepared.phase;
                        t.environment = prepared.environment.clone();
                        t.image_id = prepared.image_id.clone();
                        t.transition(TaskState::Running)?;
                        Ok(())
                    })
                    .await?;
                match saved {
                    Some(t) if t.cancel_requested => {
                        // Cancelled while it was being started.
                        self.sandbox.stop(&container).await?;
                    }
                    Some(_) => tracing::info!(task_id = %id, "agent started"),
                    None => {
                        let _ = self.sandbox.remove(&container).await;
                    }
                }
                Ok(())
            }
            Err(e @ EngineError::Sandbox(SandboxError::Unreachable { .. })) => {
                // Not the task's fault: it waits in the queue for Docker to come back.
                self.update_claimed(id, |t| Ok(t.transition(TaskState::Queued)?))
                    .await?;
                Err(e)
            }
            Err(e) => {
                let name = self.turn_container_name(&task);
                let _ = self.sandbox.release_workspace(&name).await;
                let _ = self.store.remove_scratch(id, true);
                self.fail_at_start(id, e.to_string()).await
            }
        }
    }

    /// Starts the agent of a turn whose setup succeeded, in the workspace the setup
    /// prepared.
    async fn advance(&self, task: Task) -> Result<(), EngineError> {
        let id = task.id;
        let profile = match self.config.profile(&task.agent) {
            Ok(p) => p.clone(),
            Err(message) => return self.fail_claimed(id, message).await,
        };
        // The setup's writes, home first when its workspace was shipped: keeping an
        // environment and the agent's phase read them there.
        if let Some(setup) = &task.container_id {
            match self.collect(&task, setup, RunPhase::Setup).await {
                Ok(left) if left.is_empty() => {}
                Ok(left) => {
                    tracing::warn!(task_id = %id, files = ?left, "the setup left files over the disk limit in its container");
                }
                // Hostile or over a limit: asking again gets the same answer.
                Err(EngineError::Sandbox(e @ crate::sandbox::SandboxError::ResultRefused(_))) => {
                    let message = format!("{e}. The agent did not run");
                    return self.fail_claimed(id, message).await;
                }
                Err(e) => {
                    // Its work stays in the container; the next tick tries again.
                    self.update_claimed(id, |_| Ok(())).await?;
                    return Err(e);
                }
            }
        }
        let blocked = match profile.network {
            Network::Egress => self.close_egress(&task).await.unwrap_or_default(),
            _ => vec![],
        };
        if let Some(setup) = &task.container_id {
            if let Err(e) = self.sandbox.remove(setup).await {
                tracing::warn!(task_id = %id, error = %e, "could not remove the setup container");
            }
        }
        let setup_name = self.phase_container_name(&task, RunPhase::Setup);
        if let Err(e) = self.sandbox.release_workspace(&setup_name).await {
            tracing::warn!(task_id = %id, error = %e, "could not release the setup's workspace");
        }
        let mut prepared = task.clone();
        // What the setup left becomes the environment of the next tasks, when it may.
        if prepared.environment.as_ref().is_some_and(|e| !e.layered) {
            let outcome = self.keep_environment(&prepared, &profile).await;
            if let Some(env) = prepared.environment.as_mut() {
                match outcome {
                    Ok(Saved::Kept(info)) => {
                        tracing::info!(task_id = %id, key = %info.key, "setup kept as an environment");
                        env.layered = true;
                    }
                    Ok(Saved::NotKept(why)) => env.not_kept = Some(why),
                    Err(e) => env.not_kept = Some(e.to_string()),
                }
            }
        }
        if prepared.warm {
            return self.finish_warm(prepared, blocked).await;
        }
        match self.launch(&mut prepared, &profile, false).await {
            Ok(container) => {
                let saved = self
                    .update_claimed(id, |t| {
                        t.container_id = Some(container.clone());
                        t.phase = Some(RunPhase::Agent);
                        t.environment = prepared.environment.clone();
                        t.image_id = prepared.image_id.clone();
                        t.blocked.extend(blocked);
                        Ok(())
                    })
                    .await?;
                match saved {
                    Some(t) if t.cancel_requested => self.sandbox.stop(&container).await?,
                    Some(_) => tracing::info!(task_id = %id, "setup done, agent started"),
                    None => {
                        let _ = self.sandbox.remove(&container).await;
                    }
                }
                Ok(())
            }
            Err(e @ EngineError::Sandbox(SandboxError::Unreachable { .. })) => {
                // Let the next tick try again (the claim expires with this process).
                self.update_claimed(id, |_| Ok(())).await?;
                Err(e)
            }
            Err(e) => {
                let name = self.turn_container_name(&task);
                let _ = self.sandbox.release_workspace(&name).await;
                self.fail_claimed(id, e.to_string()).await
            }
        }
    }

    /// Ends a claimed task that cannot go on, with `message` as its error (its
    /// workspace stays, nothing of the agent's ran).
    async fn fail_claimed(&self, id: TaskId, message: String) -> Result<(), EngineError> {
        tracing::warn!(task_id = %id, %message, "the agent could not be started");
        self.update_claimed(id, |t| {
            t.error = Some(message);
            if t.state == TaskState::Running {
                t.transition(TaskState::Finalizing)?;
            }
            t.transition(TaskState::Failed)?;
            t.turns.push(t.as_turn());
            Ok(())
        })
        .await?;
        Ok(())
    }

    async fn fail_at_start(&self, id: TaskId, message: String) -> Result<(), EngineError> {
        tracing::warn!(task_id = %id, %message, "task failed to start");
        self.update_claimed(id, |t| {
            t.error = Some(message);
            Ok(t.transition(TaskState::Failed)?)
        })
        .await?;
        Ok(())
    }

    /// The container of one phase of the turn: the setup (without the agent's
    /// credentials, the tool cache writable) or the agent (and check; the tool cache
    /// read-only, so one task cannot poison the next). A `fresh` launch makes the
    /// turn's workspace and runs its first phase: the setup, unless an environment
    /// the same setup left can be used instead; otherwise the agent follows the setup
    /// in its workspace. Sets the task's `phase` and `environment`; returns the
    /// container id.
    async fn launch(
        &self,
        task: &mut Task,
        profile: &AgentProfile,
        fresh: bool,
    ) -> Result<String, EngineError> {
        // A fresh turn starts by wiping the upper folder; a container of it may have run
        // although its start was not recorded (`adopt.rs`): adopt it instead.
        if fresh {
            if let Some((container, phase)) = self.container_to_adopt(task).await? {
                task.phase = Some(phase);
                return Ok(container);
            }
        }
        let clock = std::time::Instant::now();
        let image = self.pinned_image(task, profile).await?;
        let steps = self.config.steps_for(profile);
        let phase = if fresh {
            task.environment = self.environment_for(task, profile).await?;
            match &task.environment {
                Some(env) if env.reused => RunPhase::Agent,
                _ => self.first_phase(profile),
            }
        } else {
            RunPhase::Agent
        };
        task.phase = Some(phase);
        let first_phase = fresh;
        let env_dirs = task
            .environment
            .as_ref()
            .filter(|e| e.layered)
            .map(|e| (self.envs().layer(&e.key), self.envs().home(&e.key)));
        let argv = match phase {
            RunPhase::Setup => ["sh", "-c", SETUP_RUNNER, "handoff-setup"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            RunPhase::Agent => match &task.reply {
                Some(reply) => profile.follow_up_argv(reply, task.session_id.as_deref()),
                None => profile.argv(&task.prompt),
            }
            .map_err(EngineError::Invalid)?,
        };
        // How the agent's CLI gets its credentials and endpoint; the setup gets none.
        let creds = match phase {
            RunPhase::Agent => credentials::plan(profile, &|name| std::env::var(name).ok()),
            RunPhase::Setup => CredentialPlan::default(),
        };
        let wrapped = steps.setup.is_some() || steps.check.is_some();

        let (uid, gid) = agent_ids(&self.workdir)?;
        let start = Oid::from_str(task.turn_start()).map_err(GitError::from)?;
        let base_commit = match &task.workspace_base {
            Some(b) => Oid::from_str(b).map_err(GitError::from)?,
            None => start,
        };
        task.workspace_base = Some(base_commit.to_string());
        let cache_dir = match wrapped {
            true => Some(self.cache_dir(start)?),
            false => None,
        };
        let id = task.id;
        let store = self.store.clone();
        let workdir = self.workdir.clone();
        let branch = task.branch.clone();
        let dirs = cache_dir.clone();
        let env_home = env_dirs.clone();
        let env_layer: Vec<std::path::PathBuf> =
            env_dirs.iter().map(|(layer, _)| layer.clone()).collect();
        let lowers_above = env_layer.clone();
        let overlay = if first_phase {
            tokio::task::spawn_blocking(move || -> Result<OverlaySpec, GitError> {
                let user = Repository::open(&workdir)?;
                let base = base::ensure(&user, &store.bases_path(), base_commit, (uid, gid))?;
                // Bases nobody started a task on for a few days go (each is a checkout).
                base::prune(
                    &store.bases_path(),
                    std::slice::from_ref(&base.tree),
                    BASE_KEEP,
                );
                // The agent owns its HOME; files it made in earlier turns stay. A
                // first turn from an environment starts with the HOME its setup left.
                let home = store.home_path(id);
                agent_dir(&home, uid, gid, false)?;
                if let Some((_, env_home)) = &env_home {
                    environments::seed_home(&home, env_home, (uid, gid))?;
                }
                // Results of this turn's setup and check only.
                agent_dir(&store.out_path(id), uid, gid, true)?;
                if let Some(cache) = &dirs {
                    agent_dir(cache, uid, gid, false)?;
                }
                // Nothing of a previous attempt to start is the agent's work yet.
                store
                    .remove_scratch(id, true)
                    .map_err(|e| GitError::Untrusted(e.to_string()))?;
                let layer_dir = store.layer_path(id);
                layer::build(
                    &user,
                    &base,
                    start,
                    &branch,
                    &layer_dir,
                    (uid, gid),
                    Whiteouts::for_this_process(),
                )?;
                agent_dir(&store.upper_path(id), uid, gid, true)?;
                let work = store.work_path(id);
                std::fs::create_dir_all(&work).map_err(|source| GitError::Write {
                    path: work.clone(),
                    source,
                })?;
                let mut lowers = lowers_above;
                lowers.extend([layer_dir, base.tree]);
                Ok(OverlaySpec {
                    lowers,
                    upper: store.upper_path(id),
                    work,
                    base_key: Some(base_commit.to_string()),
                })
            })
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))??
        } else {
            // The setup made the workspace; the agent continues in it (or, when the
            // setup was kept as an environment, on top of it).
            let mut lowers = env_layer;
            lowers.extend([
                self.store.layer_path(id),
                base::base_dir(&self.store.bases_path(), base_commit, uid).join("tree"),
            ]);
            OverlaySpec {
                lowers,
                upper: self.store.upper_path(id),
                work: self.store.work_path(id),
                base_key: Some(base_commit.to_string()),
            }
        };
        task.phases_ms.insert("workspace".into(), ms_since(clock));
        super::fault::point("start:after-workspace");
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
        ];
        let prompt = task.turn_prompt();
        if prompt.len() <= MAX_PROMPT_ENV_BYTES {
            env.push(("HANDOFF_PROMPT".into(), prompt.to_string()));
        }
        for (name, value) in &profile.set_env {
            env.push((name.clone(), value.clone()));
        }
        match phase {
            RunPhase::Setup => {
                if let Some(setup) = &steps.setup {
                    env.push(("HANDOFF_SETUP".into(), setup.clone()));
                }
            }
            RunPhase::Agent => {
                if let Some(check) = &steps.check {
                    env.push(("HANDOFF_CHECK".into(), check.clone()));
                }
            }
        }
        if wrapped {
            for (name, value) in CACHE_ENV {
                env.push((name.to_string(), value.to_string()));
            }
        }
        let withheld = creds.withheld.clone();
        let (network, cli_args) = match profile.network {
            Network::Egress => {
                let net = self.sandbox.egress_network().await?;
                let plan = self.open_egress(task, profile, &net, phase, &creds).await?;
                env.extend(plan.env);
                (SandboxNetwork::Egress(net), plan.args)
            }
            other => {
                env.extend(creds.env.iter().cloned());
                let network = match other {
                    Network::Bridge => SandboxNetwork::Bridge,
                    Network::Host => SandboxNetwork::Host,
                    _ => SandboxNetwork::None,
                };
                (network, creds.args.clone())
            }
        };
        let argv = match phase {
            RunPhase::Setup => argv,
            RunPhase::Agent => {
                let mut argv = with_cli_args(argv, &cli_args);
                if steps.check.is_some() {
                    let mut runner: Vec<String> = ["sh", "-c", RUNNER, "handoff-runner"]
                        .iter()
                        .map(|s| s.to_string())
                        .collect();
                    runner.append(&mut argv);
                    argv = runner;
                }
                argv
            }
        };
        for name in &profile.env {
            if withheld.contains(name) {
                continue;
            }
            // Setup runs without the agent's credentials: what it leaves behind (the
            // tool cache, later a snapshot) never holds them.
            if phase == RunPhase::Setup && profile.credentials.contains(name) {
                continue;
            }
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
            name: self.phase_container_name(task, phase),
            image,
            argv,
            env,
            labels,
            uid,
            gid,
            workspace: overlay,
            home: self.store.home_path(task.id),
            out_dir: self.store.out_path(task.id),
            cache_dir,
            cache_read_only: phase == RunPhase::Agent,
            prompt_file,
            network,
            memory_bytes: profile.memory.map(|m| m.0),
            cpus: profile.cpus,
            pids: profile.pids,
        };
        let started = self.sandbox.start(&spec).await;
        if started.is_ok() {
            super::fault::point("start:after-container");
        }
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

    /// Brings the ended container's results into the task's folders when its
    /// workspace was shipped ([`Sandbox::collect`]); the setup's phase also brings its
    /// tool cache back. Returns the files left behind for want of room (the disk
    /// limit).
    pub(super) async fn collect(
        &self,
        task: &Task,
        container: &str,
        phase: RunPhase,
    ) -> Result<Vec<String>, EngineError> {
        let id = task.id;
        let profile = self.config.profile(&task.agent).ok();
        let steps = profile
            .map(|p| self.config.steps_for(p))
            .unwrap_or_default();
        let cache_dir = match phase {
            RunPhase::Setup if steps.setup.is_some() || steps.check.is_some() => {
                let start = Oid::from_str(task.turn_start()).map_err(GitError::from)?;
                Some(self.cache_dir(start)?)
            }
            _ => None,
        };
        let (uid, gid) = agent_ids(&self.workdir)?;
        let max_bytes = profile
            .map(|p| p.limits.disk_bytes)
            .unwrap_or(crate::agents::Limits::default().disk_bytes);
        let spec = crate::sandbox::CollectSpec {
            upper: self.store.upper_path(id),
            work: self.store.work_path(id),
            home: self.store.home_path(id),
            out_dir: self.store.out_path(id),
            cache_dir,
            uid,
            gid,
            max_bytes,
        };
        Ok(self.sandbox.collect(container, &spec).await?)
    }

    /// The phase a turn of `profile` starts with: its setup, if it has one.
    pub(super) fn first_phase(&self, profile: &AgentProfile) -> RunPhase {
        match self.config.steps_for(profile).setup {
            Some(_) => RunPhase::Setup,
            None => RunPhase::Agent,
        }
    }

    /// The container of one phase of the current turn: the turn's own name for the
    /// agent, with `-setup` after it for the setup.
    pub fn phase_container_name(&self, task: &Task, phase: RunPhase) -> String {
        match phase {
            RunPhase::Agent => self.turn_container_name(task),
            RunPhase::Setup => format!("{}-setup", self.turn_container_name(task)),
        }
    }

    /// `handoff-<repo key>-<id>`: unique per repository and task on one engine.
    pub fn container_name(&self, id: TaskId) -> String {
        format!("handoff-{}-{id}", self.repo_key())
    }

    /// A short key of this repository, for names on the engine (containers, images).
    pub fn repo_key(&self) -> String {
        Oid::hash_object(
            git2::ObjectType::Blob,
            self.git_dir.as_os_str().as_encoded_bytes(),
        )
        .map(|o| o.to_string()[..10].to_string())
        .unwrap_or_else(|_| "repo".into())
    }

    /// The repository, as image builds and lookups see it.
    pub fn repo_scope(&self) -> crate::image::RepoScope {
        crate::image::RepoScope {
            key: self.repo_key(),
            trusted: self.config.trust.is_trusted(),
        }
    }

    /// The image the containers of `task` are made from: the content id its image
    /// had when the task first started (found now on a first start, and recorded in
    /// `task`), so that no tag is read again for this task and no engine ever pulls.
    async fn pinned_image(
        &self,
        task: &mut Task,
        profile: &AgentProfile,
    ) -> Result<String, EngineError> {
        if let Some(id) = &task.image_id {
            return match self.sandbox.check_image(id).await {
                Ok(_) => Ok(id.clone()),
                Err(SandboxError::ImageMissing { endpoint, .. }) => {
                    Err(EngineError::from(SandboxError::ImageMissing {
                        image: format!("{id} ({} when the task started)", task.image),
                        endpoint,
                    }))
                }
                Err(e) => Err(e.into()),
            };
        }
        let image = self.image_for(profile);
        let id = self.sandbox.check_image(&image).await?;
        task.image_id = Some(id.clone());
        Ok(id)
    }

    /// The image `profile`'s tasks run in this repository ([`crate::image::image_for`]).
    pub fn image_for(&self, profile: &AgentProfile) -> String {
        crate::image::image_for(&self.workdir, &self.repo_scope(), profile)
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
    /// `name:blob` of each lockfile (`LOCKFILES`) at the top of `commit`.
    pub(super) fn lockfiles(&self, commit: Oid) -> Result<Vec<String>, EngineError> {
        let repo = Repository::open(&self.workdir).map_err(GitError::from)?;
        let tree = repo
            .find_commit(commit)
            .and_then(|c| c.tree())
            .map_err(GitError::from)?;
        Ok(LOCKFILES
            .iter()
            .filter_map(|name| tree.get_name(name).map(|e| format!("{name}:{}", e.id())))
            .collect())
    }

    /// The tool cache of this repository for the lockfiles at `commit`: tasks whose
    /// lockfiles are the same share downloads (`<git-dir>/handoff/cache/<key>`).
    fn cache_dir(&self, commit: Oid) -> Result<std::path::PathBuf, EngineError> {
        let mut key = String::new();
        for lock in self.lockfiles(commit)? {
            key.push_str(&lock);
            key.push('\n');
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

/// The budget of `limits` that `turns` and `cost_usd` have gone past, if any.
pub(super) fn budget_passed(
    limits: &crate::agents::Limits,
    turns: u32,
    cost_usd: f64,
) -> Option<StopReason> {
    if let Some(max) = limits.max_turns.filter(|max| turns > *max) {
        return Some(StopReason::Turns { max, used: turns });
    }
    if let Some(max) = limits.max_cost_usd.filter(|max| cost_usd > *max) {
        return Some(StopReason::Cost {
            limit_usd: max,
            used_usd: cost_usd,
        });
    }
    None
}

/// `argv` with `args` inserted after the CLI's subcommand (`codex exec -c …`): after
/// the first argument that is not an option, past the program.
fn with_cli_args(mut argv: Vec<String>, args: &[String]) -> Vec<String> {
    if args.is_empty() {
        return argv;
    }
    let at = argv
        .iter()
        .enumerate()
        .skip(1)
        .find(|(_, a)| !a.starts_with('-'))
        .map(|(i, _)| i + 1)
        .unwrap_or(1)
        .min(argv.len());
    for (n, arg) in args.iter().enumerate() {
        argv.insert(at + n, arg.clone());
    }
    argv
}

/// Creates `path` for the agent (emptied first when `fresh`) and gives it to `uid`.
pub(super) fn agent_dir(
    path: &std::path::Path,
    uid: u32,
    gid: u32,
    fresh: bool,
) -> Result<(), GitError> {
    let write = |source| GitError::Write {
        path: path.to_path_buf(),
        source,
    };
    if fresh {
        crate::untrusted::remove_tree(path).map_err(write)?;
    }
    std::fs::create_dir_all(path).map_err(write)?;
    if std::fs::symlink_metadata(path).map(|m| m.uid()).ok() != Some(uid) {
        std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(write)?;
    }
    Ok(())
}

/// The uid and gid the agent runs as: the repository owner's, never root.
pub(super) fn agent_ids(workdir: &std::path::Path) -> Result<(u32, u32), GitError> {
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
