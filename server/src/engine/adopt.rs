//! Adopting a turn's container whose start was never recorded.
//!
//! The engine can start an agent and die before it answers: the front-end then sees
//! Docker unreachable and puts the task back in the queue, although the agent ran and
//! wrote to the turn's upper folder. Starting the turn again would wipe that folder.
//! So a start first asks the engine for a container of the turn's name, and adopts it
//! — its work comes home when it is finalized — unless it provably never ran.

use super::task::{RunPhase, Task};
use super::{Engine, EngineError};
use crate::sandbox::{Sandbox, SandboxStatus};

impl<S: Sandbox> Engine<S> {
    /// The container of `task`'s current turn (a fresh one, which starts on an empty
    /// upper folder) and its phase, if the engine has one that may have run. One
    /// created but never started, with nothing in the upper folder, holds no work: it
    /// is removed (with its workspace volume) and `None` returned, so the turn starts
    /// afresh.
    pub(super) async fn container_to_adopt(
        &self,
        task: &Task,
    ) -> Result<Option<(String, RunPhase)>, EngineError> {
        let mut found = None;
        for phase in [RunPhase::Agent, RunPhase::Setup] {
            let name = self.phase_container_name(task, phase);
            if let Some(container) = self.sandbox.find(&name).await? {
                found = Some((container, phase, name));
                break;
            }
        }
        let Some((container, phase, name)) = found else {
            return Ok(None);
        };
        // An engine that died while starting a container may list it as created
        // although its agent ran: the upper folder tells.
        let never_started = SandboxStatus::Exited {
            code: -1,
            oom_killed: false,
        };
        if self.sandbox.status(&container).await? == never_started
            && !self.store.has_agent_writes(task.id)
        {
            self.sandbox.remove(&container).await?;
            self.sandbox.release_workspace(&name).await?;
            return Ok(None);
        }
        tracing::info!(task_id = %task.id, %container, "adopting a container whose start was not recorded");
        Ok(Some((container, phase)))
    }
}
