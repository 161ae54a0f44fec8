//! `workspace/executeCommand`: delegate, accept, reject, cancel, reply, show diff,
//! show log, list tasks. Arguments are documented in `docs/protocol.md`.

use std::collections::HashMap;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;

use super::actions::{selection_prompt, todo_prompt};
use super::convert;
use super::documents;
use super::ext::{self, DelegateArgs, HunkArgs, ListArgs, RemoveArgs, ReplyArgs, TaskArgs};
use super::server::{failure, Inner};
use super::session::{lock, Repo};
use super::watcher;
use super::wording;
use crate::diff;
use crate::engine::review::Resolution;
use crate::engine::task::{Origin, Task, TaskId};
use crate::engine::NewTask;
use crate::sandbox::Sandbox;

fn arg<T: DeserializeOwned>(params: &ExecuteCommandParams) -> Result<T> {
    let value = params.arguments.first().cloned().unwrap_or(Value::Null);
    // No argument, `null` or `[]` (what an empty Lua table encodes to) mean "no options".
    let empty = value.is_null() || value.as_array().is_some_and(|a| a.is_empty());
    let value = if empty { json!({}) } else { value };
    serde_json::from_value(value).map_err(|e| {
        failure(format!(
            "bad arguments for {}: {e} (see docs/protocol.md)",
            params.command
        ))
    })
}

pub async fn execute<S: Sandbox>(
    inner: &Arc<Inner<S>>,
    params: ExecuteCommandParams,
) -> Result<Option<Value>> {
    let result = match params.command.as_str() {
        ext::DELEGATE => delegate(inner, arg(&params)?).await,
        ext::ACCEPT => accept(inner, arg(&params)?).await,
        ext::REJECT => reject(inner, arg(&params)?).await,
        ext::CANCEL => cancel(inner, arg(&params)?).await,
        ext::REPLY => reply(inner, arg(&params)?).await,
        ext::SHOW_DIFF => show_diff(inner, arg(&params)?).await,
        ext::SHOW_LOG => show_log(inner, arg(&params)?).await,
        ext::REMOVE_TASK => remove_task(inner, arg(&params)?).await,
        ext::LIST_TASKS => list_tasks(inner, arg(&params)?),
        other => Err(format!("unknown command {other}")),
    };
    match result {
        Ok(v) => Ok(Some(v)),
        Err(message) => inner.fail(message).await,
    }
}

type Outcome = std::result::Result<Value, String>;

fn repo_of<S: Sandbox>(
    inner: &Inner<S>,
    uri: Option<&Uri>,
) -> std::result::Result<Arc<Repo<S>>, String> {
    inner.repo_for_uri(uri)
}

async fn delegate<S: Sandbox>(inner: &Arc<Inner<S>>, args: DelegateArgs) -> Outcome {
    match args {
        DelegateArgs::Todo {
            uri,
            line,
            version,
            agent,
            prompt,
            title,
        } => {
            let (prompt, title, rel) = {
                let session = lock(&inner.session);
                let doc = open_doc(&session.documents, &uri)?;
                let location = in_repo(doc, &uri)?;
                match (prompt, title, version) {
                    // Built by resolve for exactly this version of the document.
                    (Some(p), Some(t), Some(v)) if v == doc.version => (p, t, location),
                    _ => {
                        if version.is_some_and(|v| v > doc.version) {
                            return Err(stale(&uri));
                        }
                        let (p, t) = todo_prompt(doc, line as usize).map_err(|e| {
                            format!("{e}; the document changed since the action was offered, ask for code actions again")
                        })?;
                        (p, t, location)
                    }
                }
            };
            let task = NewTask {
                prompt,
                title: Some(title),
                agent,
                origin: Some(Origin { path: rel, line }),
            };
            start_task(inner, Some(&uri), task).await
        }
        DelegateArgs::Selection {
            uri,
            range,
            version,
            instruction,
            agent,
        } => {
            let Some(instruction) = instruction.filter(|i| !i.trim().is_empty()) else {
                // Ask the user in the background: the answer may take a while, and the
                // server must keep serving meanwhile.
                let inner = inner.clone();
                tokio::spawn(async move {
                    if let Some(instruction) = ask_instruction(&inner).await {
                        let sel = Selection {
                            uri,
                            range,
                            version,
                            instruction,
                            agent,
                        };
                        if let Err(e) = delegate_selection(&inner, sel).await {
                            let _: Result<()> = inner.fail(e).await;
                        }
                    }
                });
                return Ok(Value::Null);
            };
            delegate_selection(
                inner,
                Selection {
                    uri,
                    range,
                    version,
                    instruction,
                    agent,
                },
            )
            .await
        }
        DelegateArgs::Prompt { prompt, agent, uri } => {
            let task = NewTask {
                prompt,
                title: None,
                agent,
                origin: None,
            };
            start_task(inner, uri.as_ref(), task).await
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

async fn delegate_selection<S: Sandbox>(inner: &Arc<Inner<S>>, sel: Selection) -> Outcome {
    let (prompt, title, rel, line) = {
        let session = lock(&inner.session);
        let encoding = session.encoding();
        let doc = open_doc(&session.documents, &sel.uri)?;
        let location = in_repo(doc, &sel.uri)?;
        if sel.version.is_some_and(|v| v != doc.version) {
            return Err(stale(&sel.uri));
        }
        let start = convert::offset(&doc.index, sel.range.start, encoding);
        let end = convert::offset(&doc.index, sel.range.end, encoding);
        if end <= start {
            return Err("the selection is empty; select the code the agent should work on".into());
        }
        let (prompt, title, line) = selection_prompt(doc, start, end, &sel.instruction);
        (prompt, title, location, line as u32)
    };
    let task = NewTask {
        prompt,
        title: Some(title),
        agent: sel.agent,
        origin: Some(Origin { path: rel, line }),
    };
    start_task(inner, Some(&sel.uri), task).await
}

fn stale(uri: &Uri) -> String {
    format!(
        "{} changed since this action was offered (stale document version); ask for code actions again",
        uri.as_str()
    )
}

fn open_doc<'a>(
    docs: &'a HashMap<Uri, super::session::Document>,
    uri: &Uri,
) -> std::result::Result<&'a super::session::Document, String> {
    docs.get(uri)
        .ok_or_else(|| format!("{} is not open in the editor", uri.as_str()))
}

fn in_repo(doc: &super::session::Document, uri: &Uri) -> std::result::Result<String, String> {
    doc.location.as_ref().map(|l| l.rel.clone()).ok_or_else(|| {
        match convert::path_from_uri(uri) {
            None => "this buffer is not saved to a file; save it inside a git repository to delegate from it".to_string(),
            Some(p) if !p.exists() => format!(
                "{} is not saved yet; write it to disk (inside a git repository) to delegate from it",
                p.display()
            ),
            Some(p) => format!(
                "{} is not inside a git repository (or the repository's .handoff.toml is invalid; run `handoff doctor`)",
                p.display()
            ),
        }
    })
}

async fn ask_instruction<S: Sandbox>(inner: &Inner<S>) -> Option<String> {
    let actions = ext::SELECTION_INSTRUCTIONS
        .iter()
        .map(|(title, _)| MessageActionItem {
            title: title.to_string(),
            properties: HashMap::new(),
        })
        .collect();
    let picked = inner
        .client
        .show_message_request(
            MessageType::INFO,
            "Handoff: what should the background agent do with the selection?",
            Some(actions),
        )
        .await
        .ok()??;
    ext::SELECTION_INSTRUCTIONS
        .iter()
        .find(|(title, _)| *title == picked.title)
        .map(|(_, instruction)| instruction.to_string())
}

async fn start_task<S: Sandbox>(inner: &Arc<Inner<S>>, uri: Option<&Uri>, new: NewTask) -> Outcome {
    let repo = repo_of(inner, uri)?;
    let task = repo
        .engine
        .create_task(new)
        .await
        .map_err(|e| e.to_string())?;
    let waiting = format!("task #{} is queued", task.id);
    start_queued(inner, &repo, task, &waiting).await
}

/// Starts what is queued, then tells the client about `task`; when Docker cannot start
/// it, says that `waiting` (the task, the reply) waits until it can.
async fn start_queued<S: Sandbox>(
    inner: &Arc<Inner<S>>,
    repo: &Arc<Repo<S>>,
    task: Task,
    waiting: &str,
) -> Outcome {
    let started = repo.engine.tick().await;
    let task = repo.engine.get(task.id).unwrap_or(task);
    watcher::record(inner, repo, &task).await;
    if let Err(e) = started {
        inner
            .client
            .show_message(
                MessageType::WARNING,
                wording::cannot_start(waiting, &e.to_string()),
            )
            .await;
    }
    Ok(json!(task))
}

/// The task's record: the watcher's copy when it has one, else from disk.
fn task_in<S: Sandbox>(repo: &Repo<S>, id: u64) -> std::result::Result<Task, String> {
    match repo.task(TaskId(id)) {
        Some(task) => Ok(task),
        None => repo.engine.get(TaskId(id)).map_err(|e| e.to_string()),
    }
}

/// The repository of an open document, without looking on disk again.
fn repo_of_open<S: Sandbox>(
    inner: &Inner<S>,
    uri: &Uri,
) -> std::result::Result<Arc<Repo<S>>, String> {
    let workdir = lock(&inner.session)
        .documents
        .get(uri)
        .and_then(|d| d.location.as_ref().map(|l| l.workdir.clone()));
    match workdir.and_then(|w| lock(&inner.repos).get(&w).cloned()) {
        Some(repo) => Ok(repo),
        None => repo_of(inner, Some(uri)),
    }
}

async fn accept<S: Sandbox>(inner: &Arc<Inner<S>>, args: HunkArgs) -> Outcome {
    let repo = repo_of_open(inner, &args.uri)?;
    let task = task_in(&repo, args.task)?;
    let (text, version, rel, encoding, document_changes) = {
        let session = lock(&inner.session);
        let doc = open_doc(&session.documents, &args.uri)?;
        let rel = in_repo(doc, &args.uri)?;
        (
            doc.text.clone(),
            doc.version,
            rel,
            session.encoding(),
            session.features.document_changes,
        )
    };
    // Check the branch is still there before anything else: the cache may hold hunks
    // of a branch the user deleted since.
    repo.engine.check_branch(&task).map_err(|e| e.to_string())?;
    let pending = repo.pending_hunks(&task, &rel);
    let chosen: Vec<diff::Hunk> = match args.hunk {
        Some(i) => vec![pending
            .iter()
            .find(|h| h.index == i)
            .cloned()
            .ok_or_else(|| {
                format!(
                    "change {i} of task #{} in {rel} was already accepted or rejected",
                    task.id
                )
            })?],
        None => pending.to_vec(),
    };
    if chosen.is_empty() {
        return Err(format!("task #{} has no pending changes in {rel}", task.id));
    }
    let result = diff::apply_all(&chosen, &text);
    if result.edits.is_empty() {
        let why: Vec<String> = result.conflicts.iter().map(|c| c.to_string()).collect();
        return Err(format!(
            "the change from task #{} was not applied: you edited the lines it changes ({}). Open the diff (handoff.showDiff) to merge it by hand",
            task.id,
            why.join("; ")
        ));
    }
    let index = diff::LineIndex::new(&text);
    let edits: Vec<TextEdit> = result
        .edits
        .iter()
        .map(|e| TextEdit {
            range: convert::range(&index, e.start, e.end, encoding),
            new_text: e.new_text.clone(),
        })
        .collect();
    let edit = if document_changes {
        WorkspaceEdit {
            document_changes: Some(DocumentChanges::Edits(vec![TextDocumentEdit {
                text_document: OptionalVersionedTextDocumentIdentifier {
                    uri: args.uri.clone(),
                    version: Some(version),
                },
                edits: edits.into_iter().map(OneOf::Left).collect(),
            }])),
            ..Default::default()
        }
    } else {
        WorkspaceEdit {
            changes: Some(HashMap::from([(args.uri.clone(), edits)])),
            ..Default::default()
        }
    };
    let response = inner
        .client
        .apply_edit(edit)
        .await
        .map_err(|e| format!("the editor refused the edit: {}", e.message))?;
    if !response.applied {
        return Err(format!(
            "the editor did not apply the change{}; try again",
            response
                .failure_reason
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ));
    }
    let accepted: Vec<usize> = chosen
        .iter()
        .map(|h| h.index)
        .filter(|i| !result.conflicts.iter().any(|c| c.hunk() == *i))
        .collect();
    repo.engine
        .resolve_hunks(task.id, &rel, &accepted, Resolution::Accepted)
        .await
        .map_err(|e| e.to_string())?;
    repo.drop_hunks(task.id, &rel, &accepted);
    if !result.conflicts.is_empty() {
        inner
            .client
            .show_message(
                MessageType::WARNING,
                format!(
                    "Handoff: {} change(s) of task #{} were not applied because you edited their lines; they stay for review",
                    result.conflicts.len(),
                    task.id
                ),
            )
            .await;
    }
    // The editor re-renders hints and lenses after the answer: the edit is already in
    // its buffer, and the didChange it sends republishes too.
    let (inner, uri) = (inner.clone(), args.uri.clone());
    tokio::spawn(async move {
        documents::publish(&inner, &[uri]).await;
        watcher::refresh_lenses(&inner).await;
    });
    Ok(json!({ "accepted": accepted, "conflicts": result.conflicts.len() }))
}

async fn reject<S: Sandbox>(inner: &Arc<Inner<S>>, args: HunkArgs) -> Outcome {
    let repo = repo_of_open(inner, &args.uri)?;
    let task = task_in(&repo, args.task)?;
    let rel = {
        let session = lock(&inner.session);
        in_repo(open_doc(&session.documents, &args.uri)?, &args.uri)?
    };
    let pending = repo.pending_hunks(&task, &rel);
    let rejected: Vec<usize> = match args.hunk {
        Some(i) if pending.iter().any(|h| h.index == i) => vec![i],
        Some(i) => {
            return Err(format!(
                "change {i} of task #{} was already decided",
                task.id
            ))
        }
        None => pending.iter().map(|h| h.index).collect(),
    };
    repo.engine
        .resolve_hunks(task.id, &rel, &rejected, Resolution::Rejected)
        .await
        .map_err(|e| e.to_string())?;
    repo.drop_hunks(task.id, &rel, &rejected);
    documents::publish(inner, std::slice::from_ref(&args.uri)).await;
    watcher::refresh_lenses(inner).await;
    Ok(json!({ "rejected": rejected }))
}

async fn cancel<S: Sandbox>(inner: &Arc<Inner<S>>, args: TaskArgs) -> Outcome {
    let repo = repo_of(inner, args.uri.as_ref())?;
    let task = repo
        .engine
        .cancel(TaskId(args.task))
        .await
        .map_err(|e| e.to_string())?;
    watcher::record(inner, &repo, &task).await;
    Ok(json!(task))
}

async fn remove_task<S: Sandbox>(inner: &Arc<Inner<S>>, args: RemoveArgs) -> Outcome {
    let repo = repo_of(inner, args.uri.as_ref())?;
    let id = TaskId(args.task);
    let task = repo.engine.get(id).map_err(|e| e.to_string())?;
    repo.engine
        .remove(id, args.delete_branch)
        .await
        .map_err(|e| e.to_string())?;
    watcher::forget(inner, &repo, id).await;
    Ok(json!({
        "removed": id.0,
        "branch": task.branch,
        "branchDeleted": args.delete_branch,
    }))
}

async fn reply<S: Sandbox>(inner: &Arc<Inner<S>>, args: ReplyArgs) -> Outcome {
    let repo = repo_of(inner, args.uri.as_ref())?;
    let task = repo
        .engine
        .reply(TaskId(args.task), &args.message)
        .await
        .map_err(|e| e.to_string())?;
    let waiting = format!(
        "your reply to task #{} is kept and its turn queued",
        task.id
    );
    start_queued(inner, &repo, task, &waiting).await
}

/// Writes `bytes` beside the task record and asks the editor to show it.
async fn show_file<S: Sandbox>(
    inner: &Inner<S>,
    repo: &Repo<S>,
    id: TaskId,
    name: &str,
    bytes: &[u8],
) -> Outcome {
    let path = repo.engine.store().task_dir(id).join(name);
    crate::engine::store::write_atomic_unsynced(&path, bytes).map_err(|e| e.to_string())?;
    let uri = convert::uri_from_path(&path).ok_or("cannot name the file as a URI")?;
    if inner.features().show_document {
        let _ = inner
            .client
            .show_document(ShowDocumentParams {
                uri: uri.clone(),
                external: Some(false),
                take_focus: Some(true),
                selection: None,
            })
            .await;
    }
    Ok(json!({ "uri": uri, "path": path }))
}

async fn show_diff<S: Sandbox>(inner: &Arc<Inner<S>>, args: TaskArgs) -> Outcome {
    let repo = repo_of(inner, args.uri.as_ref())?;
    let id = TaskId(args.task);
    let diff = repo.engine.diff(id).map_err(|e| e.to_string())?;
    show_file(inner, &repo, id, &format!("task-{id}.diff"), &diff).await
}

async fn show_log<S: Sandbox>(inner: &Arc<Inner<S>>, args: TaskArgs) -> Outcome {
    let repo = repo_of(inner, args.uri.as_ref())?;
    let id = TaskId(args.task);
    // Claude Code and Codex output is shown as the readable transcript, every turn.
    let log = match repo
        .engine
        .transcript(id)
        .await
        .map_err(|e| e.to_string())?
    {
        Some(text) => text.into_bytes(),
        None => repo.engine.logs(id).await.map_err(|e| e.to_string())?,
    };
    show_file(inner, &repo, id, &format!("task-{id}.log"), &log).await
}

fn list_tasks<S: Sandbox>(inner: &Arc<Inner<S>>, args: ListArgs) -> Outcome {
    let repos = match &args.uri {
        Some(uri) => vec![repo_of(inner, Some(uri))?],
        None => {
            let all = inner.all_repos();
            if all.is_empty() {
                vec![repo_of(inner, None)?]
            } else {
                all
            }
        }
    };
    let mut tasks = Vec::new();
    for repo in repos {
        let workdir = repo.workdir().display().to_string();
        for task in repo.engine.list().map_err(|e| e.to_string())? {
            // The record plus the repository it belongs to, as in handoff/taskChanged.
            let mut value = json!(task);
            value["repository"] = json!(workdir);
            tasks.push(value);
        }
    }
    Ok(json!(tasks))
}
