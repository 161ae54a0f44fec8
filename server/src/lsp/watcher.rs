//! The server's background loop: drives every open repository's engine (so tasks
//! started from the CLI or another editor are picked up and finalized too), and hands
//! what changed to [`updates`](super::updates).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tower_lsp_server::ls_types::MessageType;

use super::server::Server;
use super::session::Repo;
use super::updates;
use crate::engine::task::{Task, TaskId};
use crate::sandbox::Sandbox;

/// How often lenses are refreshed while a task runs, for their elapsed time.
const LENS_REFRESH: Duration = Duration::from_secs(5);

pub async fn run<S: Sandbox>(server: Arc<Server<S>>) {
    let mut interval = tokio::time::interval(server.options.poll);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_error: Option<String> = None;
    let mut last_lens_refresh = Instant::now();
    loop {
        interval.tick().await;
        let mut any_active = false;
        for mut repo in server.session.repos() {
            // Tasks that start now start on the configuration as it is now (an image
            // is built only from the content that was trusted); checked only while
            // tasks run, to leave the disk alone otherwise.
            if repo.tasks().iter().any(|t| !t.state.is_terminal()) {
                if let Ok(current) = server.session.with_current_config(repo.clone()) {
                    repo = current;
                }
            }
            any_active |= poll(&server, &repo, &mut last_error).await;
        }
        if any_active && last_lens_refresh.elapsed() >= LENS_REFRESH {
            updates::refresh_lenses(&server).await;
            last_lens_refresh = Instant::now();
        }
    }
}

/// Reconciles one repository and reports changes; true if a task is still active.
async fn poll<S: Sandbox>(
    server: &Arc<Server<S>>,
    repo: &Arc<Repo<S>>,
    last_error: &mut Option<String>,
) -> bool {
    let active = repo.tasks().iter().any(|t| !t.state.is_terminal());
    if active {
        match repo.engine().tick().await {
            Ok(()) => *last_error = None,
            Err(e) => {
                let msg = e.to_string();
                if last_error.as_deref() != Some(&msg) {
                    tracing::warn!(error = %msg, "cannot reconcile tasks");
                    server
                        .editor
                        .log_message(MessageType::WARNING, format!("handoff: {msg}"))
                        .await;
                    *last_error = Some(msg);
                }
            }
        }
    }
    let Ok(fresh) = repo.engine().list() else {
        return active;
    };
    let changed: Vec<Task> = fresh
        .iter()
        .filter(|t| repo.known(t.id).as_ref() != Some(*t))
        .cloned()
        .collect();
    for task in &changed {
        updates::record_task(server, repo, task).await;
    }
    let gone: Vec<TaskId> = repo
        .tasks()
        .iter()
        .map(|t| t.id)
        .filter(|id| !fresh.iter().any(|t| t.id == *id))
        .collect();
    for id in gone {
        updates::forget_task(server, repo, id).await;
    }
    fresh.iter().any(|t| !t.state.is_terminal())
}
