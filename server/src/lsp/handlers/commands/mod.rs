//! `workspace/executeCommand`: each command of `ext.rs`, its argument parsed into the
//! command's type and its result converted back. Arguments and results are documented
//! in `docs/protocol.md`.

mod comments;
mod delegate;
mod review;
mod tasks;
pub mod trust;

use std::future::Future;
use std::sync::Arc;

use serde_json::Value;
use tower_lsp_server::ls_types::{ExecuteCommandParams, MessageType};

use crate::engine::task::Task;
use crate::lsp::convert::{from_proto, to_proto};
use crate::lsp::error::LspError;
use crate::lsp::ext::{self, ExtCommand};
use crate::lsp::server::Server;
use crate::lsp::session::Repo;
use crate::lsp::{updates, wording};
use crate::sandbox::Sandbox;

pub async fn execute<S: Sandbox>(
    server: &Arc<Server<S>>,
    params: ExecuteCommandParams,
) -> Result<Option<Value>, LspError> {
    let p = &params;
    match p.command.as_str() {
        ext::Delegate::NAME => run::<ext::Delegate, _>(p, |a| delegate::delegate(server, a)).await,
        ext::Accept::NAME => run::<ext::Accept, _>(p, |a| review::accept(server, a)).await,
        ext::Reject::NAME => run::<ext::Reject, _>(p, |a| review::reject(server, a)).await,
        ext::Cancel::NAME => run::<ext::Cancel, _>(p, |a| tasks::cancel(server, a)).await,
        ext::Reply::NAME => run::<ext::Reply, _>(p, |a| tasks::reply(server, a)).await,
        ext::ShowDiff::NAME => run::<ext::ShowDiff, _>(p, |a| tasks::show_diff(server, a)).await,
        ext::ShowLog::NAME => run::<ext::ShowLog, _>(p, |a| tasks::show_log(server, a)).await,
        ext::RemoveTask::NAME => run::<ext::RemoveTask, _>(p, |a| tasks::remove(server, a)).await,
        ext::ListTasks::NAME => run::<ext::ListTasks, _>(p, |a| tasks::list(server, a)).await,
        ext::Trust::NAME => run::<ext::Trust, _>(p, |a| trust::trust(server, a)).await,
        ext::Comment::NAME => run::<ext::Comment, _>(p, |a| comments::comment(server, a)).await,
        ext::SendComments::NAME => {
            run::<ext::SendComments, _>(p, |a| comments::send(server, a)).await
        }
        other => Err(LspError::invalid(format!(
            "unknown command {other} (see docs/protocol.md)"
        ))),
    }
}

/// Parses the argument of command `C`, runs it, and converts its result.
async fn run<C: ExtCommand, Fut>(
    params: &ExecuteCommandParams,
    handler: impl FnOnce(C::Args) -> Fut,
) -> Result<Option<Value>, LspError>
where
    Fut: Future<Output = Result<C::Result, LspError>>,
{
    let args = from_proto::command_args::<C>(params)?;
    Ok(to_proto::result(handler(args).await?))
}

/// Starts what is queued, then tells the client about `task`; when the sandbox cannot
/// start it, says that `waiting` (the task, the reply) waits until it can.
async fn start_queued<S: Sandbox>(
    server: &Arc<Server<S>>,
    repo: &Arc<Repo<S>>,
    task: Task,
    waiting: &str,
) -> Result<Task, LspError> {
    let started = repo.engine().tick().await;
    let task = repo.engine().get_started(task.id).await.unwrap_or(task);
    updates::record_task(server, repo, &task).await;
    match started {
        Err(e) => {
            server
                .editor
                .show_message(
                    MessageType::WARNING,
                    wording::cannot_start(waiting, &e.to_string()),
                )
                .await;
        }
        // A client without progress would not know the task exists.
        Ok(()) if !server.editor.features().work_done_progress => {
            server
                .editor
                .show_message(MessageType::INFO, wording::started(&task))
                .await;
        }
        Ok(()) => {}
    }
    Ok(task)
}
