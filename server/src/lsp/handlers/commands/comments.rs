//! `handoff.comment` and `handoff.sendComments`: the review loop. A comment on a hunk
//! is kept as pending (shown on the hunk); sending them starts the task's next turn
//! with every pending comment quoted with its file, lines and change.

use std::sync::Arc;

use crate::engine::task::{Task, TaskId};
use crate::lsp::error::{ErrorKind, LspError};
use crate::lsp::ext::{CommentArgs, CommentResult, TaskArgs};
use crate::lsp::server::Server;
use crate::lsp::updates;
use crate::sandbox::Sandbox;

pub async fn comment<S: Sandbox>(
    server: &Arc<Server<S>>,
    args: CommentArgs,
) -> Result<CommentResult, LspError> {
    let Some(text) = args.text.filter(|t| !t.trim().is_empty()) else {
        return Err(LspError::new(
            ErrorKind::Unsupported,
            format!(
                "this editor cannot ask for the comment's text; give it in `text`, or run \
                 `handoff comment {} FILE:LINE \"…\"`",
                args.task
            ),
        ));
    };
    let doc = server.session.document(&args.uri)?;
    let repo = server.session.repo_of(&doc)?;
    let task = repo.task(TaskId(args.task))?;
    let rel = doc.rel()?.to_string();
    let hunk = repo
        .pending_hunks(&task, &rel)
        .iter()
        .find(|h| h.index == args.hunk)
        .cloned()
        .ok_or_else(|| {
            LspError::not_found(format!(
                "change {} of task #{} in {rel} is not pending review",
                args.hunk, task.id
            ))
        })?;
    let first = hunk.result_start as u32 + 1;
    let last = (hunk.result_start + hunk.new_lines.len().max(1)) as u32;
    repo.engine()
        .add_comment(task.id, &rel, first, last, &text)
        .await?;
    let pending = repo.engine().pending_comments(task.id)?.len();
    repo.invalidate();
    updates::publish(server, &server.session.open_documents()).await;
    updates::refresh_lenses(server).await;
    Ok(CommentResult { pending })
}

pub async fn send<S: Sandbox>(server: &Arc<Server<S>>, args: TaskArgs) -> Result<Task, LspError> {
    let repo = server.session.repo_for_uri(args.uri.as_ref())?;
    let id = TaskId(args.task);
    if repo.engine().pending_comments(id)?.is_empty() {
        return Err(LspError::not_found(format!(
            "task #{id} has no pending comments to send"
        )));
    }
    let task = repo.engine().reply(id, "").await?;
    repo.invalidate();
    updates::publish(server, &server.session.open_documents()).await;
    let waiting = format!("the comments to task #{id} are kept");
    super::start_queued(server, &repo, task, &waiting).await
}
