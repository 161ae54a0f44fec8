//! What the editor is told when state changes, whoever changed it (a request handler,
//! the watcher): hunk diagnostics, `handoff/taskChanged` and `handoff/taskRemoved`,
//! work-done progress, CodeLens refreshes, and a message when a task ends.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use tower_lsp_server::ls_types::{MessageType, Uri};

use super::convert::to_proto;
use super::error::LspError;
use super::ext::{ShownFile, TaskChangedParams, TaskRemovedParams};
use super::server::Server;
use super::session::{ProgressStep, Repo};
use super::wording;
use crate::engine::task::{Task, TaskId};
use crate::sandbox::Sandbox;

/// Recomputes and sends the hunk diagnostics of the given documents. Hunks found
/// applied in a buffer (the editor applied them before it answered, or the user typed
/// them) are recorded as accepted first.
pub async fn publish<S: Sandbox>(server: &Server<S>, uris: &[Uri]) {
    for uri in uris {
        let Ok(doc) = server.session.document(uri) else {
            continue;
        };
        let repo = doc
            .location
            .as_ref()
            .and_then(|l| server.session.repo_at(&l.workdir));
        let mut placement = server.session.placement(&doc);
        if let (Some(repo), Ok(rel)) = (&repo, doc.rel()) {
            if !placement.applied.is_empty() {
                record_applied(repo, rel, &placement.applied).await;
                placement = server.session.placement(&doc);
            }
        }
        let title = |id| {
            repo.as_ref()
                .and_then(|r| r.known(id))
                .map(|t| t.title)
                .unwrap_or_default()
        };
        let encoding = server.session.encoding();
        let mut diagnostics: Vec<_> = placement
            .hunks
            .iter()
            .map(|p| to_proto::hunk_diagnostic(&doc.index, encoding, p, &title(p.task)))
            .collect();
        for p in placement.hunks.iter() {
            for text in &p.comments {
                diagnostics.push(to_proto::comment_diagnostic(&doc.index, encoding, p, text));
            }
        }
        server
            .editor
            .publish_diagnostics(uri.clone(), diagnostics, Some(doc.version))
            .await;
    }
}

/// Records hunks found applied in a buffer, task by task.
async fn record_applied<S: Sandbox>(repo: &Repo<S>, rel: &str, applied: &[(TaskId, usize)]) {
    let mut by_task: BTreeMap<TaskId, Vec<usize>> = BTreeMap::new();
    for (task, hunk) in applied {
        by_task.entry(*task).or_default().push(*hunk);
    }
    for (task, hunks) in by_task {
        tracing::info!(task_id = %task, path = rel, ?hunks, "proposed lines found in the buffer: accepted");
        if let Err(e) = repo.record_accepted(task, rel, &hunks).await {
            tracing::warn!(task_id = %task, error = %e, "cannot record accepted hunks");
        }
    }
}

/// Republishes every open document of the repository at `workdir`.
pub async fn publish_repo<S: Sandbox>(server: &Server<S>, workdir: &Path) {
    let uris = server.session.documents_in(workdir);
    publish(server, &uris).await;
}

/// Takes note of a new or changed task record and tells the client.
pub async fn record_task<S: Sandbox>(server: &Arc<Server<S>>, repo: &Arc<Repo<S>>, task: &Task) {
    let previous = repo.set_task(task.clone());
    if previous.as_ref() == Some(task) {
        return;
    }
    // Progress first: a client that sees the task end in `taskChanged` finds its
    // progress already ended.
    report_progress(server, repo, task).await;
    server
        .editor
        .task_changed(TaskChangedParams {
            repository: repo.name(),
            task: task.clone(),
        })
        .await;
    let just_ended =
        task.state.is_terminal() && previous.as_ref().is_none_or(|p| !p.state.is_terminal());
    let follow_up = !task.state.is_terminal() && previous.is_some_and(|p| p.state.is_terminal());
    if follow_up || just_ended {
        // A follow-up replaces the result: its old hunks leave the editor until it
        // ends; an ended task's hunks are computed afresh.
        repo.forget_hunks(task.id);
        publish_repo(server, repo.workdir()).await;
    }
    if just_ended && server.editor.features().task_messages {
        let message = wording::ended(task, &server.session.open_paths());
        server.editor.show_message(MessageType::INFO, message).await;
    }
    refresh_lenses(server).await;
}

/// Takes note of a removed task: its hunks leave the editor and the client is told.
pub async fn forget_task<S: Sandbox>(server: &Arc<Server<S>>, repo: &Arc<Repo<S>>, id: TaskId) {
    if repo.remove_task(id).is_none() {
        return;
    }
    server
        .editor
        .task_removed(TaskRemovedParams {
            repository: repo.name(),
            task: id.0,
        })
        .await;
    publish_repo(server, repo.workdir()).await;
    refresh_lenses(server).await;
}

pub async fn refresh_lenses<S: Sandbox>(server: &Server<S>) {
    server.editor.refresh_lenses();
}

async fn report_progress<S: Sandbox>(server: &Arc<Server<S>>, repo: &Arc<Repo<S>>, task: &Task) {
    if !server.editor.features().work_done_progress {
        return;
    }
    let token = to_proto::progress_token(&repo.engine().turn_container_name(task), task.id);
    let step = server
        .session
        .progress_step(repo.workdir(), task.id, task.state.is_terminal());
    let value = match step {
        ProgressStep::Nothing => return,
        ProgressStep::End => to_proto::progress_end(task),
        ProgressStep::Report => to_proto::progress_report(task),
        ProgressStep::Begin => {
            // Creating waits for the client's answer: never in the caller's time.
            let (server, repo, task) = (server.clone(), repo.clone(), task.clone());
            let background = server.clone();
            background.session.spawn(async move {
                let created = server.editor.create_progress(token.clone()).await;
                if server
                    .session
                    .progress_created(repo.workdir(), task.id, created)
                {
                    // What the task is now, not when the creation was asked for: a
                    // change while the client answered was not reported (the progress
                    // was not begun), and every change from here on is.
                    let task = repo.known(task.id).unwrap_or(task);
                    let begin = to_proto::progress_begin(&task);
                    server.editor.progress(token, begin).await;
                }
            });
            return;
        }
    };
    server.editor.progress(token, value).await;
}

/// Writes `bytes` beside the task record (`tasks/<id>/<name>`) and asks the editor to
/// show it; the file, and whether the editor showed it.
pub async fn show_task_file<S: Sandbox>(
    server: &Server<S>,
    repo: &Repo<S>,
    id: TaskId,
    name: &str,
    bytes: &[u8],
) -> Result<(ShownFile, bool), LspError> {
    let path = repo.engine().store().task_dir(id).join(name);
    crate::engine::store::write_atomic_unsynced(&path, bytes)
        .map_err(|e| LspError::failed(e.to_string()))?;
    let uri = to_proto::uri_from_path(&path)
        .ok_or_else(|| LspError::failed(format!("cannot name {} as a URI", path.display())))?;
    let shown = server.editor.show_document(uri.clone()).await;
    let file = ShownFile {
        uri,
        path: path.display().to_string(),
    };
    Ok((file, shown))
}
