//! The server's background loop: drives every open repository's engine (so tasks
//! started from the CLI or another editor are picked up and finalized too), and tells
//! the client what changed: `handoff/taskChanged`, work-done progress, CodeLens
//! refreshes, hunk diagnostics and a message when a task ends.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tower_lsp_server::ls_types::*;

use super::documents;
use super::ext::{TaskChanged, TaskChangedParams, TaskRemoved, TaskRemovedParams};
use super::server::Inner;
use super::session::{lock, Repo};
use super::wording::{self, status};
use crate::engine::task::{Task, TaskId};
use crate::sandbox::Sandbox;

const POLL: Duration = Duration::from_millis(500);
/// How often lenses are refreshed while a task runs, for their elapsed time.
const LENS_REFRESH: Duration = Duration::from_secs(5);

/// Tasks with a work-done progress open in the client.
pub type Progresses = HashSet<(PathBuf, TaskId)>;

pub async fn run<S: Sandbox>(inner: Arc<Inner<S>>) {
    let mut interval = tokio::time::interval(POLL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_error: Option<String> = None;
    let mut last_lens_refresh = Instant::now();
    loop {
        interval.tick().await;
        let mut any_active = false;
        for repo in inner.all_repos() {
            any_active |= poll(&inner, &repo, &mut last_error).await;
        }
        if any_active && last_lens_refresh.elapsed() >= LENS_REFRESH {
            refresh_lenses(&inner).await;
            last_lens_refresh = Instant::now();
        }
    }
}

/// Reconciles one repository and reports changes; true if a task is still active.
async fn poll<S: Sandbox>(
    inner: &Arc<Inner<S>>,
    repo: &Arc<Repo<S>>,
    last_error: &mut Option<String>,
) -> bool {
    let active = repo.tasks().iter().any(|t| !t.state.is_terminal());
    if active {
        match repo.engine.tick().await {
            Ok(()) => *last_error = None,
            Err(e) => {
                let msg = e.to_string();
                if last_error.as_deref() != Some(&msg) {
                    tracing::warn!(error = %msg, "cannot reconcile tasks");
                    inner
                        .client
                        .log_message(MessageType::WARNING, format!("handoff: {msg}"))
                        .await;
                    *last_error = Some(msg);
                }
            }
        }
    }
    let Ok(fresh) = repo.engine.list() else {
        return active;
    };
    let changed: Vec<Task> = {
        fresh
            .iter()
            .filter(|t| repo.task(t.id).as_ref() != Some(*t))
            .cloned()
            .collect()
    };
    for task in &changed {
        record(inner, repo, task).await;
    }
    let gone: Vec<TaskId> = repo
        .tasks()
        .iter()
        .map(|t| t.id)
        .filter(|id| !fresh.iter().any(|t| t.id == *id))
        .collect();
    for id in gone {
        forget(inner, repo, id).await;
    }
    fresh.iter().any(|t| !t.state.is_terminal())
}

/// Takes note of a removed task: its hunks leave the editor and the client is told.
pub async fn forget<S: Sandbox>(inner: &Arc<Inner<S>>, repo: &Arc<Repo<S>>, id: TaskId) {
    if repo.remove_task(id).is_none() {
        return;
    }
    inner
        .client
        .send_notification::<TaskRemoved>(TaskRemovedParams {
            repository: repo.workdir().display().to_string(),
            task: id.0,
        })
        .await;
    documents::publish_repo(inner, repo.workdir()).await;
    refresh_lenses(inner).await;
}

/// Takes note of a new or changed task record and tells the client.
pub async fn record<S: Sandbox>(inner: &Arc<Inner<S>>, repo: &Arc<Repo<S>>, task: &Task) {
    let previous = repo.set_task(task.clone());
    if previous.as_ref() == Some(task) {
        return;
    }
    // Progress first: a client that sees the task end in `taskChanged` finds its
    // progress already ended.
    report_progress(inner, repo, task).await;
    inner
        .client
        .send_notification::<TaskChanged>(TaskChangedParams {
            repository: repo.workdir().display().to_string(),
            task: task.clone(),
        })
        .await;
    let just_ended =
        task.state.is_terminal() && previous.as_ref().is_none_or(|p| !p.state.is_terminal());
    let follow_up = !task.state.is_terminal() && previous.is_some_and(|p| p.state.is_terminal());
    if follow_up {
        // A follow-up replaces the result: its old hunks leave the editor until it ends.
        repo.forget_hunks(task.id);
        documents::publish_repo(inner, repo.workdir()).await;
    }
    if just_ended {
        repo.forget_hunks(task.id);
        documents::publish_repo(inner, repo.workdir()).await;
        if inner.features().task_messages {
            inner
                .client
                .show_message(MessageType::INFO, summary(inner, task))
                .await;
        }
    }
    refresh_lenses(inner).await;
}

/// What the user is told when a task ends.
fn summary<S: Sandbox>(inner: &Inner<S>, task: &Task) -> String {
    let open: Vec<String> = lock(&inner.session)
        .documents
        .values()
        .filter_map(|d| d.location.as_ref().map(|l| l.rel.clone()))
        .collect();
    wording::ended(task, &open)
}

async fn report_progress<S: Sandbox>(inner: &Inner<S>, repo: &Repo<S>, task: &Task) {
    if !inner.features().work_done_progress {
        return;
    }
    let key = (repo.workdir().to_path_buf(), task.id);
    let token = NumberOrString::String(format!(
        "handoff/{}/{}",
        repo.engine.turn_container_name(task),
        task.id
    ));
    let mut progresses = inner.progress.lock().await;
    if task.state.is_terminal() {
        if progresses.remove(&key) {
            send_progress(
                inner,
                token,
                WorkDoneProgress::End(WorkDoneProgressEnd {
                    message: Some(status(task)),
                }),
            )
            .await;
        }
        return;
    }
    if progresses.contains(&key) {
        send_progress(
            inner,
            token,
            WorkDoneProgress::Report(WorkDoneProgressReport {
                message: Some(status(task)),
                ..Default::default()
            }),
        )
        .await;
        return;
    }
    if inner
        .client
        .create_work_done_progress(token.clone())
        .await
        .is_err()
    {
        return;
    }
    send_progress(
        inner,
        token.clone(),
        WorkDoneProgress::Begin(WorkDoneProgressBegin {
            title: wording::progress_title(task),
            message: Some(status(task)),
            cancellable: Some(false),
            percentage: None,
        }),
    )
    .await;
    progresses.insert(key);
}

async fn send_progress<S: Sandbox>(
    inner: &Inner<S>,
    token: ProgressToken,
    value: WorkDoneProgress,
) {
    inner
        .client
        .send_notification::<notification::Progress>(ProgressParams {
            token,
            value: ProgressParamsValue::WorkDone(value),
        })
        .await;
}

pub async fn refresh_lenses<S: Sandbox>(inner: &Inner<S>) {
    if inner.features().code_lens_refresh {
        // The client answers when it has re-requested; do not hold anything meanwhile.
        let _ = inner.client.code_lens_refresh().await;
    }
}
