//! The commands on a whole task: cancel, reply, show its diff or log, remove, list.

use std::sync::Arc;

use tower_lsp_server::ls_types::MessageType;

use super::start_queued;
use crate::engine::task::{Task, TaskId};
use crate::lsp::error::LspError;
use crate::lsp::ext::{
    ListArgs, ListedTask, RemoveArgs, RemoveResult, ReplyArgs, ShownFile, TaskArgs,
};
use crate::lsp::server::Server;
use crate::lsp::session::Repo;
use crate::lsp::{updates, wording};
use crate::sandbox::Sandbox;

pub async fn cancel<S: Sandbox>(server: &Arc<Server<S>>, args: TaskArgs) -> Result<Task, LspError> {
    let repo = server.session.repo_for_uri(args.uri.as_ref())?;
    let task = repo.engine().cancel(TaskId(args.task)).await?;
    updates::record_task(server, &repo, &task).await;
    Ok(task)
}

pub async fn reply<S: Sandbox>(server: &Arc<Server<S>>, args: ReplyArgs) -> Result<Task, LspError> {
    let repo = server.session.repo_for_uri(args.uri.as_ref())?;
    let task = repo
        .engine()
        .reply(TaskId(args.task), &args.message)
        .await?;
    let waiting = format!(
        "your reply to task #{} is kept and its turn queued",
        task.id
    );
    start_queued(server, &repo, task, &waiting).await
}

pub async fn remove<S: Sandbox>(
    server: &Arc<Server<S>>,
    args: RemoveArgs,
) -> Result<RemoveResult, LspError> {
    let repo = server.session.repo_for_uri(args.uri.as_ref())?;
    let id = TaskId(args.task);
    let task = repo.engine().get(id)?;
    repo.engine().remove(id, args.delete_branch).await?;
    updates::forget_task(server, &repo, id).await;
    Ok(RemoveResult {
        removed: id.0,
        branch: task.branch,
        branch_deleted: args.delete_branch,
    })
}

pub async fn show_diff<S: Sandbox>(
    server: &Arc<Server<S>>,
    args: TaskArgs,
) -> Result<ShownFile, LspError> {
    let repo = server.session.repo_for_uri(args.uri.as_ref())?;
    let id = TaskId(args.task);
    let diff = repo.engine().diff(id)?;
    show(server, &repo, id, "diff", &format!("task-{id}.diff"), &diff).await
}

pub async fn show_log<S: Sandbox>(
    server: &Arc<Server<S>>,
    args: TaskArgs,
) -> Result<ShownFile, LspError> {
    let repo = server.session.repo_for_uri(args.uri.as_ref())?;
    let id = TaskId(args.task);
    // Claude Code and Codex output is shown as the readable transcript, every turn.
    let log = match repo.engine().transcript(id).await? {
        Some(text) => text.into_bytes(),
        None => repo.engine().logs(id).await?,
    };
    show(server, &repo, id, "log", &format!("task-{id}.log"), &log).await
}

/// Writes a task's file and shows it, or says where it is to a client that cannot
/// open it.
async fn show<S: Sandbox>(
    server: &Server<S>,
    repo: &Repo<S>,
    id: TaskId,
    what: &str,
    name: &str,
    bytes: &[u8],
) -> Result<ShownFile, LspError> {
    let (file, shown) = updates::show_task_file(server, repo, id, name, bytes).await?;
    if !shown {
        let message = wording::file_written(what, id, &file.path);
        server.editor.show_message(MessageType::INFO, message).await;
    }
    Ok(file)
}

pub async fn list<S: Sandbox>(
    server: &Arc<Server<S>>,
    args: ListArgs,
) -> Result<Vec<ListedTask>, LspError> {
    let repos = match &args.uri {
        Some(uri) => vec![server.session.repo_for_uri(Some(uri))?],
        None => match server.session.repos() {
            all if all.is_empty() => vec![server.session.repo_for_uri(None)?],
            all => all,
        },
    };
    let mut tasks = Vec::new();
    for repo in repos {
        for task in repo.engine().list()? {
            tasks.push(ListedTask {
                task,
                repository: repo.name(),
            });
        }
    }
    Ok(tasks)
}
