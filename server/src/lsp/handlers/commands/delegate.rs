//! `handoff.delegate`: a TODO, a selection with an instruction, or a free-text prompt
//! becomes a task.

use std::sync::Arc;

use tower_lsp_server::ls_types::{Range, Uri};

use super::start_queued;
use crate::engine::task::{Origin, Task};
use crate::engine::NewTask;
use crate::lsp::convert::from_proto;
use crate::lsp::error::LspError;
use crate::lsp::ext::{DelegateArgs, SELECTION_INSTRUCTIONS};
use crate::lsp::server::Server;
use crate::sandbox::Sandbox;

pub async fn delegate<S: Sandbox>(
    server: &Arc<Server<S>>,
    args: DelegateArgs,
) -> Result<Option<Task>, LspError> {
    match args {
        DelegateArgs::Todo {
            uri,
            line,
            version,
            agent,
            prompt,
            title,
        } => {
            let doc = server.session.document(&uri)?;
            let rel = doc.saved_rel()?.to_string();
            let (prompt, title) = match (prompt, title, version) {
                // Built by resolve for exactly this version of the document.
                (Some(p), Some(t), Some(v)) if v == doc.version => (p, t),
                _ => {
                    if version.is_some_and(|v| v > doc.version) {
                        return Err(stale(&uri));
                    }
                    doc.todo_prompt(line as usize).map_err(|e| {
                        LspError::stale(format!(
                            "{e}; the document changed since the action was offered, ask for code actions again"
                        ))
                    })?
                }
            };
            let task = NewTask {
                prompt,
                title: Some(title),
                agent,
                origin: Some(Origin { path: rel, line }),
                warm: false,
            };
            start_task(server, Some(&uri), task).await.map(Some)
        }
        DelegateArgs::Selection {
            uri,
            range,
            version,
            instruction,
            agent,
        } => {
            let selection = Selection {
                uri,
                range,
                version,
                instruction: String::new(),
                agent,
            };
            match instruction.filter(|i| !i.trim().is_empty()) {
                Some(instruction) => delegate_selection(
                    server,
                    Selection {
                        instruction,
                        ..selection
                    },
                )
                .await
                .map(Some),
                None => {
                    // Ask the user in the background: the answer may take a while, and
                    // the server keeps serving meanwhile.
                    let server = server.clone();
                    let background = server.clone();
                    background.session.spawn(async move {
                        if let Some(instruction) = ask_instruction(&server).await {
                            let selection = Selection {
                                instruction,
                                ..selection
                            };
                            if let Err(e) = delegate_selection(&server, selection).await {
                                server.show_failure(&e).await;
                            }
                        }
                    });
                    Ok(None)
                }
            }
        }
        DelegateArgs::Prompt {
            prompt,
            agent,
            uri,
            attempts,
        } => {
            let agents = crate::engine::agent_list(agent.as_deref());
            let attempts = attempts.unwrap_or(agents.len());
            let task = NewTask {
                prompt,
                title: None,
                agent: None,
                origin: None,
                warm: false,
            };
            if attempts == 1 && agents.len() == 1 {
                let task = NewTask {
                    agent: agents[0].clone(),
                    ..task
                };
                return start_task(server, uri.as_ref(), task).await.map(Some);
            }
            let repo = current_repo(server, uri.as_ref())?;
            let tasks = repo
                .engine()
                .create_attempts(task, &agents, attempts)
                .await?;
            let first = tasks[0].clone();
            let waiting = format!(
                "the {} attempts (group g{}) are queued",
                tasks.len(),
                first.id
            );
            super::start_queued(server, &repo, first, &waiting)
                .await
                .map(Some)
        }
    }
}

struct Selection {
    uri: Uri,
    range: Range,
    version: Option<i32>,
    instruction: String,
    agent: Option<String>,
}

async fn delegate_selection<S: Sandbox>(
    server: &Arc<Server<S>>,
    sel: Selection,
) -> Result<Task, LspError> {
    let doc = server.session.document(&sel.uri)?;
    let rel = doc.saved_rel()?.to_string();
    if sel.version.is_some_and(|v| v != doc.version) {
        return Err(stale(&sel.uri));
    }
    let encoding = server.session.encoding();
    let start = from_proto::offset(&doc.index, sel.range.start, encoding);
    let end = from_proto::offset(&doc.index, sel.range.end, encoding);
    if end <= start {
        return Err(LspError::invalid(
            "the selection is empty; select the code the agent should work on",
        ));
    }
    let (prompt, title, line) = doc.selection_prompt(start, end, &sel.instruction);
    let task = NewTask {
        prompt,
        title: Some(title),
        agent: sel.agent,
        origin: Some(Origin {
            path: rel,
            line: line as u32,
        }),
        warm: false,
    };
    start_task(server, Some(&sel.uri), task).await
}

fn stale(uri: &Uri) -> LspError {
    LspError::stale(format!(
        "{} changed since this action was offered (stale document version); ask for code actions again",
        uri.as_str()
    ))
}

/// Asks which instruction goes with a selection (`window/showMessageRequest`).
async fn ask_instruction<S: Sandbox>(server: &Server<S>) -> Option<String> {
    let choices: Vec<&str> = SELECTION_INSTRUCTIONS.iter().map(|(t, _)| *t).collect();
    let picked = server
        .editor
        .ask(
            "Handoff: what should the background agent do with the selection?",
            &choices,
        )
        .await?;
    SELECTION_INSTRUCTIONS
        .iter()
        .find(|(title, _)| *title == picked)
        .map(|(_, instruction)| instruction.to_string())
}

async fn start_task<S: Sandbox>(
    server: &Arc<Server<S>>,
    uri: Option<&Uri>,
    new: NewTask,
) -> Result<Task, LspError> {
    let repo = current_repo(server, uri)?;
    let task = repo.engine().create_task(new).await?;
    let waiting = format!("task #{} is queued", task.id);
    start_queued(server, &repo, task, &waiting).await
}

/// The repository a task starts in, with its configuration as it is on disk now (a
/// task never runs on settings trusted for content that has changed since); asks
/// about trusting the configuration when it is new and not trusted.
fn current_repo<S: Sandbox>(
    server: &Arc<Server<S>>,
    uri: Option<&Uri>,
) -> Result<Arc<crate::lsp::session::Repo<S>>, LspError> {
    let repo = server
        .session
        .with_current_config(server.session.repo_for_uri(uri)?)?;
    super::trust::ask_once(server, repo.clone());
    Ok(repo)
}
