//! Releasing what an ended turn used — its container, its workspace volume, its
//! scratch folders, the ref that kept its snapshot — once its outcome is saved and
//! its work is on the branch (or, when the import failed, kept for `handoff recover`).
//!
//! Finalize releases right after saving the outcome. A front-end killed in between
//! leaves a task that has ended but still holds all of it; [`Engine::tick`] finds
//! such a task by its overlay scratch folder (which only a turn in progress or an
//! unreleased one has) and releases it. Nothing here decides a task's state.

use git2::Repository;

use super::task::{RunPhase, Task};
use super::{Engine, EngineError};
use crate::sandbox::Sandbox;

impl<S: Sandbox> Engine<S> {
    /// The workspace volumes of `task`'s current turn: one per phase that ran (the
    /// same folders, mounted under each phase's container name).
    pub(super) fn turn_workspaces(&self, task: &Task) -> Vec<String> {
        [RunPhase::Setup, RunPhase::Agent]
            .map(|phase| self.phase_container_name(task, phase))
            .to_vec()
    }

    /// Releases the ended turn that ran in `container`, with `workspaces` (see
    /// [`Engine::turn_workspaces`]). The engine's parts go first; the scratch folders
    /// only once they are gone, so a release that fails half-way (Docker unreachable)
    /// is found and done again by a later tick. Folders move to the trash at once and
    /// are deleted by the tick.
    pub(super) async fn release_turn(
        &self,
        task: &Task,
        container: Option<&str>,
        workspaces: &[String],
        work_is_home: bool,
    ) -> Result<(), EngineError> {
        let id = task.id;
        if let Some(container) = container {
            self.sandbox.remove(container).await?;
        }
        for workspace in workspaces {
            self.sandbox.release_workspace(workspace).await?;
        }
        // When the import failed, the upper folder is the only copy of the work.
        self.store.discard_scratch(id, work_is_home)?;
        if work_is_home && task.state.is_terminal() {
            if let Ok(repo) = Repository::open(&self.workdir) {
                if let Ok(mut r) = repo.find_reference(&format!("refs/handoff/base/{id}")) {
                    let _ = r.delete();
                }
            }
        }
        Ok(())
    }

    /// Releases an ended task whose front-end died between saving its outcome and
    /// releasing its turn. Call with the lock held (so no follow-up starts meanwhile);
    /// quick, whatever the agent wrote. A failure is logged and left for the next tick.
    pub(super) async fn release_if_left(&self, task: &Task) {
        if !task.state.is_terminal() || task.claim.is_some() || !self.store.has_scratch(task.id) {
            return;
        }
        let work_is_home = !self.needs_recovery(task);
        let released = self
            .release_turn(
                task,
                task.container_id.as_deref(),
                &self.turn_workspaces(task),
                work_is_home,
            )
            .await;
        match released {
            Ok(()) => tracing::info!(task_id = %task.id, "released a turn its front-end left"),
            // Said on every tick until it works (Docker down, say): not a warning.
            Err(e) => {
                tracing::info!(task_id = %task.id, error = %e, "could not release the ended turn yet")
            }
        }
    }
}
