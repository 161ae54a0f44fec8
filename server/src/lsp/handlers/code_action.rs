//! `textDocument/codeAction` and `codeAction/resolve`: "Delegate TODO to background
//! agent" on a TODO comment (saying so when a task already works on it), "Delegate
//! selection to background agent…" on a selection, "Accept change" / "Reject change" /
//! "Accept all changes from task #N" on a pending hunk, and "Handoff #N running —
//! Cancel" / "Show log" / "Open diff" on the line a task was delegated from.
//!
//! Listing is cheap (a bounded TODO scan and the cached hunks); the prompt for a TODO
//! is built only in `codeAction/resolve`, or at once for clients that cannot resolve.

use std::collections::BTreeSet;

use tower_lsp_server::ls_types::*;

use crate::context;
use crate::diff::{plan_accept, Choice};
use crate::engine::task::TaskId;
use crate::lsp::convert::{from_proto, to_proto, to_proto::Offer};
use crate::lsp::error::LspError;
use crate::lsp::ext::{self, ActionData, DelegateArgs, HunkArgs, TaskArgs};
use crate::lsp::server::Server;
use crate::lsp::session::Document;
use crate::lsp::wording::titles;
use crate::sandbox::Sandbox;

pub fn code_actions<S: Sandbox>(
    server: &Server<S>,
    params: &CodeActionParams,
) -> Vec<CodeActionOrCommand> {
    let uri = &params.text_document.uri;
    let Ok(doc) = server.session.document(uri) else {
        tracing::debug!(
            uri = uri.as_str(),
            "code action for a document that is not open"
        );
        return vec![];
    };
    let features = server.editor.features();
    let encoding = server.session.encoding();
    let mut offers = hunk_offers(server, &doc, params.range);

    let start = from_proto::offset(&doc.index, params.range.start, encoding);
    let end = from_proto::offset(&doc.index, params.range.end, encoding);
    let line = params.range.start.line as usize;
    tracing::debug!(
        line,
        version = doc.version,
        len = doc.text.len(),
        "code actions"
    );
    offers.extend(task_offers(server, &doc, params.range));
    if let Some(todo) = context::find_todo(&doc.text, line, doc.language) {
        // Delegating the same TODO again is allowed, but not silently.
        let running = active_task_at(server, &doc, todo.lines.first);
        let delegate = DelegateArgs::Todo {
            uri: uri.clone(),
            line: todo.lines.first as u32,
            version: Some(doc.version),
            agent: None,
            prompt: None,
            title: None,
        };
        let mut offer = Offer {
            title: running.map_or(titles::DELEGATE_TODO.into(), titles::delegate_todo_again),
            kind: CodeActionKind::QUICKFIX,
            preferred: false,
            command: None,
            edit: None,
            unresolved: Some(ActionData { delegate }),
        };
        // A plain Command cannot be resolved later.
        if !features.code_action_resolve || !features.code_action_literals {
            resolve_offer(&doc, &mut offer);
        }
        offers.push(offer);
    }
    if from_proto::explicit_selection(&doc.text, start, end) {
        let delegate = DelegateArgs::Selection {
            uri: uri.clone(),
            range: params.range,
            version: Some(doc.version),
            instruction: None,
            agent: None,
        };
        offers.push(Offer::new(
            titles::DELEGATE_SELECTION,
            CodeActionKind::REFACTOR,
            to_proto::command::<ext::Delegate>("Delegate selection", &delegate),
        ));
    }
    offers
        .into_iter()
        .filter_map(|o| to_proto::code_action(o, features))
        .collect()
}

/// The tasks delegated from the requested lines: cancel them while they run, show
/// their log, open their diff. What a lens shows, for clients that draw no lenses.
fn task_offers<S: Sandbox>(server: &Server<S>, doc: &Document, range: Range) -> Vec<Offer> {
    let (first, last) = (range.start.line, range.end.line);
    let Some(location) = &doc.location else {
        return vec![];
    };
    let Some(repo) = server.session.repo_at(&location.workdir) else {
        return vec![];
    };
    let mut offers = Vec::new();
    for task in repo.tasks() {
        let Some(origin) = &task.origin else { continue };
        if origin.path != location.rel || origin.line < first || origin.line > last {
            continue;
        }
        let args = TaskArgs {
            task: task.id.0,
            uri: Some(doc.uri.clone()),
        };
        let offer = |title: String, command| Offer::new(title, CodeActionKind::QUICKFIX, command);
        if !task.state.is_terminal() {
            offers.push(offer(
                titles::cancel_task(task.id, task.state),
                to_proto::command::<ext::Cancel>(titles::CANCEL, &args),
            ));
        } else if task.head_commit.is_some() {
            offers.push(offer(
                titles::open_diff(task.id),
                to_proto::command::<ext::ShowDiff>(titles::OPEN_DIFF, &args),
            ));
        }
        offers.push(offer(
            titles::show_log(task.id),
            to_proto::command::<ext::ShowLog>("Show log", &args),
        ));
    }
    offers
}

/// A task still working on the TODO at `line`, if any.
fn active_task_at<S: Sandbox>(server: &Server<S>, doc: &Document, line: usize) -> Option<TaskId> {
    let location = doc.location.as_ref()?;
    let repo = server.session.repo_at(&location.workdir)?;
    repo.tasks()
        .into_iter()
        .filter(|t| !t.state.is_terminal())
        .find(|t| {
            t.origin
                .as_ref()
                .is_some_and(|o| o.path == location.rel && o.line as usize == line)
        })
        .map(|t| t.id)
}

/// Accept and Reject for the pending hunks on the requested lines.
fn hunk_offers<S: Sandbox>(server: &Server<S>, doc: &Document, range: Range) -> Vec<Offer> {
    let placed = server.session.placed_hunks(doc);
    let (first, last) = (range.start.line as usize, range.end.line as usize);
    let mut offers = Vec::new();
    let mut tasks = BTreeSet::new();
    for p in placed.iter().filter(|p| p.touches(first, last)) {
        // A file of tool settings is accepted hunk by hunk, never all at once.
        if !p.sensitive {
            tasks.insert(p.task);
        }
        let args = HunkArgs {
            task: p.task.0,
            uri: doc.uri.clone(),
            hunk: Some(p.hunk.index),
        };
        if !p.is_conflict() {
            let mut accept = Offer::new(
                titles::accept_change(p.task),
                CodeActionKind::QUICKFIX,
                to_proto::command::<ext::Accept>("Accept change", &args),
            );
            accept.preferred = true;
            offers.push(with_edit(
                server,
                doc,
                accept,
                p.task,
                Choice::One(p.hunk.index),
            ));
        }
        offers.push(Offer::new(
            titles::reject_change(p.task),
            CodeActionKind::QUICKFIX,
            to_proto::command::<ext::Reject>("Reject change", &args),
        ));
    }
    let mut commented = BTreeSet::new();
    for p in placed.iter().filter(|p| p.touches(first, last)) {
        if server.editor.features().comment_input && !p.is_conflict() {
            let args = ext::CommentArgs {
                task: p.task.0,
                uri: doc.uri.clone(),
                hunk: p.hunk.index,
                text: None,
            };
            offers.push(Offer::new(
                titles::comment(p.task),
                CodeActionKind::EMPTY,
                to_proto::command::<ext::Comment>("Comment", &args),
            ));
        }
        commented.insert(p.task);
    }
    if let Some(repo) = doc
        .location
        .as_ref()
        .and_then(|l| server.session.repo_at(&l.workdir))
    {
        for task in &commented {
            let n = repo
                .engine()
                .pending_comments(*task)
                .map(|c| c.len())
                .unwrap_or(0);
            if n > 0 {
                let args = ext::TaskArgs {
                    task: task.0,
                    uri: Some(doc.uri.clone()),
                };
                offers.push(Offer::new(
                    titles::send_comments(*task, n),
                    CodeActionKind::EMPTY,
                    to_proto::command::<ext::SendComments>("Send comments", &args),
                ));
            }
        }
    }
    for task in tasks {
        let args = HunkArgs {
            task: task.0,
            uri: doc.uri.clone(),
            hunk: None,
        };
        let accept_all = Offer::new(
            titles::accept_all(task),
            CodeActionKind::QUICKFIX,
            to_proto::command::<ext::Accept>("Accept all", &args),
        );
        offers.push(with_edit(server, doc, accept_all, task, Choice::All));
    }
    offers
}

/// For a client that takes code action literals but no `workspace/applyEdit`, the
/// accept action carries its edit instead of the command: the client applies it,
/// and the server records the decision when the proposed lines show up in the buffer.
fn with_edit<S: Sandbox>(
    server: &Server<S>,
    doc: &Document,
    mut offer: Offer,
    task: TaskId,
    choice: Choice,
) -> Offer {
    let features = server.editor.features();
    if features.apply_edit || !features.code_action_literals {
        return offer;
    }
    let (Ok(repo), Ok(rel)) = (server.session.repo_of(doc), doc.rel()) else {
        return offer;
    };
    let Ok(record) = repo.task(task) else {
        return offer;
    };
    let pending: Vec<_> = repo
        .pending_hunks(&record, rel)
        .iter()
        .filter(|h| !repo.is_accepting(task, rel, h.index))
        .cloned()
        .collect();
    if let Ok(plan) = plan_accept(&pending, choice, &doc.text) {
        offer.edit = Some(to_proto::workspace_edit(
            &doc.uri,
            doc.version,
            &plan.edits,
            &doc.index,
            server.session.encoding(),
            features,
        ));
        offer.command = None;
    }
    offer
}

/// Fills in the command of a delegate action, with the prompt built now.
pub fn resolve<S: Sandbox>(
    server: &Server<S>,
    mut action: CodeAction,
) -> Result<CodeAction, LspError> {
    let Some(Ok(data)) = action
        .data
        .clone()
        .map(serde_json::from_value::<ActionData>)
    else {
        return Ok(action);
    };
    let uri = match &data.delegate {
        DelegateArgs::Todo { uri, .. } | DelegateArgs::Selection { uri, .. } => uri.clone(),
        DelegateArgs::Prompt { .. } => return Ok(action),
    };
    let doc = server
        .session
        .document(&uri)
        .map_err(|_| LspError::not_found(format!("{} is not open any more", uri.as_str())))?;
    let mut offer = Offer {
        title: action.title.clone(),
        kind: CodeActionKind::QUICKFIX,
        preferred: false,
        command: None,
        edit: None,
        unresolved: Some(data),
    };
    if !resolve_offer(&doc, &mut offer) {
        return Err(LspError::stale(format!(
            "cannot prepare `{}`: the document changed; ask for code actions again",
            action.title
        )));
    }
    action.command = offer.command;
    action.data = None;
    Ok(action)
}

/// Puts the delegate command, with its prompt, into `offer`; false if the offer's
/// data does not fit the document any more.
fn resolve_offer(doc: &Document, offer: &mut Offer) -> bool {
    let Some(ActionData { delegate }) = offer.unresolved.take() else {
        return false;
    };
    let delegate = match delegate {
        DelegateArgs::Todo {
            uri,
            line,
            version,
            agent,
            ..
        } => match doc.todo_prompt(line as usize) {
            Ok((prompt, title)) => DelegateArgs::Todo {
                uri,
                line,
                version,
                agent,
                prompt: Some(prompt),
                title: Some(title),
            },
            Err(_) => return false,
        },
        other => other,
    };
    offer.command = Some(to_proto::command::<ext::Delegate>(&offer.title, &delegate));
    true
}
