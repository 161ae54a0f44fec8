//! `handoff.accept` and `handoff.reject`: the user's decision on pending hunks.

use std::sync::Arc;

use tower_lsp_server::ls_types::MessageType;

use crate::diff::{plan_accept, Choice, PlanError};
use crate::engine::review::Resolution;
use crate::engine::task::TaskId;
use crate::lsp::convert::to_proto;
use crate::lsp::error::{ErrorKind, LspError};
use crate::lsp::ext::{AcceptResult, HunkArgs, RejectResult};
use crate::lsp::server::Server;
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
    let response = server
        .editor
        .apply_edit(edit)
        .await
        .map_err(|e| LspError::failed(format!("the editor refused the edit: {e}")))?;
    if !response.applied {
        return Err(LspError::failed(format!(
            "the editor did not apply the change{}; try again",
            response
                .failure_reason
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        )));
    }
    repo.engine()
        .resolve_hunks(task.id, &rel, &plan.accepted, Resolution::Accepted)
        .await?;
    repo.drop_hunks(task.id, &rel, &plan.accepted);
    if !plan.conflicts.is_empty() {
        server
            .editor
            .show_message(
                MessageType::WARNING,
                format!(
                    "Handoff: {} change(s) of task #{} were not applied because you edited their lines; they stay for review",
                    plan.conflicts.len(),
                    task.id
                ),
            )
            .await;
    }
    // The editor re-renders hints and lenses after the answer: the edit is already in
    // its buffer, and the didChange it sends republishes too.
    let (background, uri) = (server.clone(), args.uri.clone());
    server.session.spawn(async move {
        updates::publish(&background, &[uri]).await;
        updates::refresh_lenses(&background).await;
    });
    Ok(AcceptResult {
        accepted: plan.accepted,
        conflicts: plan.conflicts.len(),
    })
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
