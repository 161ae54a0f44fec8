//! `handoff.accept` and `handoff.reject`: the user's decision on pending hunks.

use std::sync::Arc;

use tower_lsp_server::ls_types::{MessageType, Uri, WorkspaceEdit};

use crate::diff::{plan_accept, Choice, PlanError};
use crate::engine::review::Resolution;
use crate::engine::task::TaskId;
use crate::lsp::convert::to_proto;
use crate::lsp::editor::ApplyOutcome;
use crate::lsp::error::{ErrorKind, LspError};
use crate::lsp::ext::{AcceptResult, HunkArgs, RejectResult};
use crate::lsp::server::Server;
use crate::lsp::session::Repo;
use crate::lsp::updates;
use crate::sandbox::Sandbox;

pub async fn accept<S: Sandbox>(
    server: &Arc<Server<S>>,
    args: HunkArgs,
) -> Result<AcceptResult, LspError> {
    let doc = server.session.document(&args.uri)?;
    let repo = server.session.repo_of(&doc)?;
    let task = repo.task(TaskId(args.task))?;
    let rel = doc.rel()?.to_string();
    // Check the branch is still there before anything else: the cache may hold hunks
    // of a branch the user deleted since.
    repo.engine()
        .check_branch(&task)
        .map_err(|e| LspError::not_found(e.to_string()))?;
    let pending = repo.pending_hunks(&task, &rel);
    let choice = args.hunk.map_or(Choice::All, Choice::One);
    let plan = plan_accept(&pending, choice, &doc.text).map_err(|e| match e {
        PlanError::NotPending(i) => LspError::not_found(format!(
            "change {i} of task #{} in {rel} was already accepted or rejected",
            task.id
        )),
        PlanError::NothingPending => {
            LspError::not_found(format!("task #{} has no pending changes in {rel}", task.id))
        }
        PlanError::Conflicts(conflicts) => LspError::new(
            ErrorKind::Conflict,
            format!(
                "the change from task #{} was not applied: you edited the lines it changes ({}). \
                 Open the diff (handoff.showDiff) to merge it by hand",
                task.id,
                PlanError::Conflicts(conflicts)
            ),
        ),
    })?;
    let edit = to_proto::workspace_edit(
        &args.uri,
        doc.version,
        &plan.edits,
        &doc.index,
        server.session.encoding(),
        server.editor.features(),
    );
    // The edit goes out after the answer: the client may ask the user first (Eglot
    // does, inside its synchronous executeCommand), and the server keeps serving.
    let accepted = plan.accepted.clone();
    let conflicts = plan.conflicts.len();
    let applying = Applying {
        server: server.clone(),
        repo,
        task: task.id,
        rel,
        uri: args.uri,
        hunks: plan.accepted,
        conflicts,
    };
    server.session.spawn(applying.run(edit));
    Ok(AcceptResult {
        accepted,
        conflicts,
    })
}

/// An accepted edit on its way to the editor.
struct Applying<S: Sandbox> {
    server: Arc<Server<S>>,
    repo: Arc<Repo<S>>,
    task: TaskId,
    rel: String,
    uri: Uri,
    hunks: Vec<usize>,
    /// Chosen hunks left out because the user edited their lines.
    conflicts: usize,
}

impl<S: Sandbox> Applying<S> {
    /// Sends the edit and records the decision once the editor confirms it.
    async fn run(self, edit: WorkspaceEdit) {
        let outcome = self.server.editor.apply_edit(edit).await;
        let warning = match outcome {
            ApplyOutcome::Applied => {
                if let Err(e) = self.record().await {
                    self.server.show_failure(&e).await;
                }
                (self.conflicts > 0).then(|| {
                    format!(
                        "Handoff: {} change(s) of task #{} were not applied because you edited their lines; they stay for review",
                        self.conflicts, self.task
                    )
                })
            }
            ApplyOutcome::Refused(reason) => Some(format!(
                "Handoff: the editor did not apply the change from task #{}{}; it stays for review",
                self.task,
                reason.map(|r| format!(" ({r})")).unwrap_or_default()
            )),
            ApplyOutcome::Failed(message) => Some(format!(
                "Handoff: the editor refused the change from task #{} ({message}); it stays for review",
                self.task
            )),
            ApplyOutcome::NoAnswer(wait) => Some(format!(
                "Handoff: the editor did not confirm the change from task #{} within {}s; it stays for review",
                self.task,
                wait.as_secs()
            )),
        };
        if let Some(warning) = warning {
            self.server
                .editor
                .show_message(MessageType::WARNING, warning)
                .await;
        }
        updates::publish(&self.server, std::slice::from_ref(&self.uri)).await;
        updates::refresh_lenses(&self.server).await;
    }

    async fn record(&self) -> Result<(), LspError> {
        self.repo
            .engine()
            .resolve_hunks(self.task, &self.rel, &self.hunks, Resolution::Accepted)
            .await?;
        self.repo.drop_hunks(self.task, &self.rel, &self.hunks);
        Ok(())
    }
}

pub async fn reject<S: Sandbox>(
    server: &Arc<Server<S>>,
    args: HunkArgs,
) -> Result<RejectResult, LspError> {
    let doc = server.session.document(&args.uri)?;
    let repo = server.session.repo_of(&doc)?;
    let task = repo.task(TaskId(args.task))?;
    let rel = doc.rel()?.to_string();
    let pending = repo.pending_hunks(&task, &rel);
    let rejected: Vec<usize> = match args.hunk {
        Some(i) if pending.iter().any(|h| h.index == i) => vec![i],
        Some(i) => {
            return Err(LspError::not_found(format!(
                "change {i} of task #{} was already decided",
                task.id
            )))
        }
        None => pending.iter().map(|h| h.index).collect(),
    };
    repo.engine()
        .resolve_hunks(task.id, &rel, &rejected, Resolution::Rejected)
        .await?;
    repo.drop_hunks(task.id, &rel, &rejected);
    updates::publish(server, std::slice::from_ref(&args.uri)).await;
    updates::refresh_lenses(server).await;
    Ok(RejectResult { rejected })
}
