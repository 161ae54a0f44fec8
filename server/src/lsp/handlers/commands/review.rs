//! `handoff.accept` and `handoff.reject`: the user's decision on pending hunks.

use std::sync::Arc;

use tower_lsp_server::ls_types::{MessageType, Uri, WorkspaceEdit};

use crate::diff::{plan_accept, Choice, PlanError};
use crate::engine::review::Resolution;
use crate::engine::task::{Task, TaskId};
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
    let all = repo.pending_hunks(&task, &rel);
    let choice = args.hunk.map_or(Choice::All, Choice::One);
    if choice == Choice::All && task.sensitive_files.contains(&rel) {
        return Err(LspError::new(
            ErrorKind::InvalidArgument,
            format!(
                "{rel} configures tools, editors, agents or CI: task #{}'s changes to it are \
                 not accepted all at once; read and accept them one by one",
                task.id
            ),
        ));
    }
    if let Choice::One(i) = choice {
        if repo.is_accepting(task.id, &rel, i) {
            return Err(LspError::not_found(format!(
                "change {i} of task #{} is being applied already",
                task.id
            )));
        }
    }
    let pending: Vec<_> = all
        .iter()
        .filter(|h| !repo.is_accepting(task.id, &rel, h.index))
        .cloned()
        .collect();
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
    if !server.editor.features().apply_edit {
        return Err(cannot_apply(server, &repo, &task, &rel).await);
    }
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
    // Not shown meanwhile; never a conflict when the editor's didChange comes first.
    repo.begin_accept(task.id, &rel, &plan.accepted);
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

/// The answer to a client that cannot apply edits from the server: where the change
/// is, so the user can apply it another way (the diff file is shown if possible).
async fn cannot_apply<S: Sandbox>(
    server: &Server<S>,
    repo: &Repo<S>,
    task: &Task,
    rel: &str,
) -> LspError {
    let name = format!("task-{}.diff", task.id);
    let written = match repo.engine().diff(task.id) {
        Ok(bytes) => updates::show_task_file(server, repo, task.id, &name, &bytes)
            .await
            .ok(),
        Err(_) => None,
    };
    let diff = match written {
        Some((file, _)) => format!(
            "the whole change is in {} (`git apply` applies it)",
            file.path
        ),
        None => format!("see the change with `handoff diff {}`", task.id),
    };
    LspError::new(
        ErrorKind::Unsupported,
        format!(
            "this editor cannot apply edits from a language server (it does not declare \
             workspace.applyEdit), so task #{}'s change to {rel} cannot be applied from here: \
             {diff}, and on branch {}. Editors that support code action literals get the \
             edit in the \"Accept change\" action instead",
            task.id, task.branch
        ),
    )
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
        // The hunks leave the buffer's hints at once, whatever the client does next.
        updates::publish(&self.server, std::slice::from_ref(&self.uri)).await;
        let outcome = self.server.editor.apply_edit(edit).await;
        if outcome == ApplyOutcome::Applied {
            if let Err(e) = self
                .repo
                .record_accepted(self.task, &self.rel, &self.hunks)
                .await
            {
                self.server.show_failure(&e).await;
            }
        }
        self.repo.end_accept(self.task, &self.rel, &self.hunks);
        // Unconfirmed hunks whose lines are in the buffer anyway are recorded here.
        updates::publish(&self.server, std::slice::from_ref(&self.uri)).await;
        updates::refresh_lenses(&self.server).await;
        let left = self.repo.still_pending(self.task, &self.rel, &self.hunks);
        let task = self.task;
        let warning = match outcome {
            _ if left.is_empty() => (self.conflicts > 0).then(|| {
                format!(
                    "Handoff: {} change(s) of task #{task} were not applied because you edited their lines; they stay for review",
                    self.conflicts
                )
            }),
            ApplyOutcome::Applied => None,
            ApplyOutcome::Refused(reason) => Some(format!(
                "Handoff: the editor did not apply the change from task #{task}{}; it stays for review",
                reason.map(|r| format!(" ({r})")).unwrap_or_default()
            )),
            ApplyOutcome::Failed(message) => Some(format!(
                "Handoff: the editor refused the change from task #{task} ({message}); it stays for review"
            )),
            ApplyOutcome::NoAnswer(wait) => Some(format!(
                "Handoff: the editor did not confirm the change from task #{task} within {wait:?}; it stays for review"
            )),
        };
        if let Some(warning) = warning {
            self.server
                .editor
                .show_message(MessageType::WARNING, warning)
                .await;
        }
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
    let pending: Vec<_> = repo
        .pending_hunks(&task, &rel)
        .iter()
        .filter(|h| !repo.is_accepting(task.id, &rel, h.index))
        .cloned()
        .collect();
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
