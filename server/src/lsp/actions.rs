//! Code actions: "Delegate TODO to background agent" on a TODO comment, "Delegate
//! selection to background agent…" on a selection, and "Accept change" / "Reject
//! change" / "Accept all changes from task #N" on a pending hunk.
//!
//! Listing is cheap (a bounded TODO scan and the cached hunks); the prompt for a TODO
//! is built only in `codeAction/resolve`.

use std::collections::BTreeSet;

use serde_json::{json, Value};
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;

use super::convert;
use super::documents::placed_in;
use super::ext::{self, ActionData, DelegateArgs, HunkArgs};
use super::server::{failure, Inner};
use super::session::{hunk_lines, lock, Document};
use super::wording::titles;
use crate::context::{self, LineRange, PromptRequest, Target};
use crate::diff::Anchor;
use crate::sandbox::Sandbox;

pub fn code_actions<S: Sandbox>(inner: &Inner<S>, params: &CodeActionParams) -> CodeActionResponse {
    let uri = &params.text_document.uri;
    let mut actions = Vec::new();
    hunk_actions(inner, uri, params.range, &mut actions);

    let session = lock(&inner.session);
    let Some(doc) = session.documents.get(uri) else {
        tracing::debug!(
            uri = uri.as_str(),
            "code action for a document that is not open"
        );
        return actions;
    };
    let encoding = session.encoding();
    let resolve_now = !session.features.code_action_resolve;
    let start = convert::offset(&doc.index, params.range.start, encoding);
    let end = convert::offset(&doc.index, params.range.end, encoding);

    let line = params.range.start.line as usize;
    tracing::debug!(
        line,
        version = doc.version,
        len = doc.text.len(),
        "code actions"
    );
    if let Some(todo) = context::find_todo(&doc.text, line, doc.language) {
        let delegate = DelegateArgs::Todo {
            uri: uri.clone(),
            line: todo.lines.first as u32,
            version: Some(doc.version),
            agent: None,
            prompt: None,
            title: None,
        };
        let mut action = CodeAction {
            title: titles::DELEGATE_TODO.into(),
            kind: Some(CodeActionKind::QUICKFIX),
            data: Some(json!(ActionData { delegate })),
            ..Default::default()
        };
        if resolve_now {
            resolve_with(doc, &mut action);
        }
        actions.push(CodeActionOrCommand::CodeAction(action));
    }
    if convert::explicit_selection(&doc.text, start, end) {
        let delegate = DelegateArgs::Selection {
            uri: uri.clone(),
            range: params.range,
            version: Some(doc.version),
            instruction: None,
            agent: None,
        };
        actions.push(CodeActionOrCommand::CodeAction(CodeAction {
            title: titles::DELEGATE_SELECTION.into(),
            kind: Some(CodeActionKind::REFACTOR),
            command: Some(command(
                "Delegate selection",
                ext::DELEGATE,
                json!(delegate),
            )),
            ..Default::default()
        }));
    }
    actions
}

fn hunk_actions<S: Sandbox>(
    inner: &Inner<S>,
    uri: &Uri,
    range: Range,
    out: &mut Vec<CodeActionOrCommand>,
) {
    let Some((placed, _)) = placed_in(inner, uri) else {
        return;
    };
    let first = range.start.line as usize;
    let last = range.end.line as usize;
    let mut tasks = BTreeSet::new();
    for p in placed.iter() {
        let (start, end) = hunk_lines(p);
        // A pure insertion covers no line; offer it on the line where it goes.
        let touches = first <= end.max(start + 1).saturating_sub(1) && last >= start;
        if !touches {
            continue;
        }
        tasks.insert(p.task);
        let args = |hunk: Option<usize>| {
            json!(HunkArgs {
                task: p.task.0,
                uri: uri.clone(),
                hunk,
            })
        };
        let conflict = matches!(p.anchor, Anchor::Conflict { .. });
        if !conflict {
            out.push(CodeActionOrCommand::CodeAction(CodeAction {
                title: titles::accept_change(p.task),
                kind: Some(CodeActionKind::QUICKFIX),
                is_preferred: Some(true),
                command: Some(command(
                    "Accept change",
                    ext::ACCEPT,
                    args(Some(p.hunk.index)),
                )),
                ..Default::default()
            }));
        }
        out.push(CodeActionOrCommand::CodeAction(CodeAction {
            title: titles::reject_change(p.task),
            kind: Some(CodeActionKind::QUICKFIX),
            command: Some(command(
                "Reject change",
                ext::REJECT,
                args(Some(p.hunk.index)),
            )),
            ..Default::default()
        }));
    }
    for task in tasks {
        out.push(CodeActionOrCommand::CodeAction(CodeAction {
            title: titles::accept_all(task),
            kind: Some(CodeActionKind::QUICKFIX),
            command: Some(command(
                "Accept all",
                ext::ACCEPT,
                json!(HunkArgs {
                    task: task.0,
                    uri: uri.clone(),
                    hunk: None
                }),
            )),
            ..Default::default()
        }));
    }
}

pub fn command(title: &str, name: &str, arg: Value) -> Command {
    Command {
        title: title.into(),
        command: name.into(),
        arguments: Some(vec![arg]),
    }
}

/// Fills in the command of a delegate action, with the prompt built now.
pub fn resolve<S: Sandbox>(inner: &Inner<S>, mut action: CodeAction) -> Result<CodeAction> {
    let data: ActionData = match action.data.clone().map(serde_json::from_value) {
        Some(Ok(d)) => d,
        _ => return Ok(action),
    };
    let uri = match &data.delegate {
        DelegateArgs::Todo { uri, .. } | DelegateArgs::Selection { uri, .. } => uri.clone(),
        DelegateArgs::Prompt { .. } => return Ok(action),
    };
    let session = lock(&inner.session);
    let doc = session
        .documents
        .get(&uri)
        .ok_or_else(|| failure(format!("{} is not open any more", uri.as_str())))?;
    if resolve_with(doc, &mut action) {
        Ok(action)
    } else {
        Err(failure(format!(
            "cannot prepare `{}`: the document changed; ask for code actions again",
            action.title
        )))
    }
}

/// Puts the delegate command, with its prompt, into `action`; false if the action's
/// data does not fit the document any more.
fn resolve_with(doc: &Document, action: &mut CodeAction) -> bool {
    let Some(Ok(ActionData { delegate })) = action.data.clone().map(serde_json::from_value) else {
        return false;
    };
    let delegate = match delegate {
        DelegateArgs::Todo {
            uri,
            line,
            version,
            agent,
            ..
        } => match todo_prompt(doc, line as usize) {
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
    action.command = Some(command(&action.title, ext::DELEGATE, json!(delegate)));
    action.data = None;
    true
}

/// The prompt and title for the TODO on `line` of `doc`.
pub fn todo_prompt(doc: &Document, line: usize) -> std::result::Result<(String, String), String> {
    let rel = doc
        .location
        .as_ref()
        .map(|l| l.rel.as_str())
        .unwrap_or("(unsaved file)");
    let todo = context::find_todo(&doc.text, line, doc.language)
        .ok_or_else(|| format!("there is no TODO comment on line {} any more", line + 1))?;
    let code = context::code_context(&doc.text, todo.lines, doc.language);
    let instruction = todo.description();
    let request = PromptRequest {
        path: rel,
        language: doc.language,
        instruction: &instruction,
        target: Target::Todo(&todo),
        context: Some(&code),
    };
    Ok((context::build_prompt(&request), context::title(&request)))
}

/// The prompt and title for a selection with the user's instruction.
pub fn selection_prompt(
    doc: &Document,
    start: usize,
    end: usize,
    instruction: &str,
) -> (String, String, usize) {
    let rel = doc
        .location
        .as_ref()
        .map(|l| l.rel.as_str())
        .unwrap_or("(unsaved file)");
    let start_line = doc
        .index
        .position(start, crate::diff::PositionEncoding::Utf8)
        .line as usize;
    let end_line = doc
        .index
        .position(end, crate::diff::PositionEncoding::Utf8)
        .line as usize;
    let lines = LineRange::new(start_line, end_line.max(start_line));
    let code = context::code_context(&doc.text, lines, doc.language);
    let text = &doc.text[start.min(doc.text.len())..end.min(doc.text.len())];
    let request = PromptRequest {
        path: rel,
        language: doc.language,
        instruction,
        target: Target::Selection { lines, text },
        context: Some(&code),
    };
    (
        context::build_prompt(&request),
        context::title(&request),
        start_line,
    )
}
