//! `textDocument/codeLens`: the state of tasks on the line they were delegated from
//! ("⟳ Handoff #12 running 1m32s · Show log · Cancel"), and "Accept | Reject" above
//! each pending hunk.

use tower_lsp_server::ls_types::*;

use crate::lsp::convert::to_proto;
use crate::lsp::ext::{self, HunkArgs, TaskArgs};
use crate::lsp::server::Server;
use crate::lsp::wording::{self, titles};
use crate::sandbox::Sandbox;

pub fn code_lenses<S: Sandbox>(server: &Server<S>, uri: &Uri) -> Vec<CodeLens> {
    let mut lenses = Vec::new();
    let Ok(doc) = server.session.document(uri) else {
        return lenses;
    };
    let Some(location) = &doc.location else {
        return lenses;
    };
    let Some(repo) = server.session.repo_at(&location.workdir) else {
        return lenses;
    };
    for task in &repo.tasks() {
        let Some(origin) = task.origin.as_ref().filter(|o| o.path == location.rel) else {
            continue;
        };
        let line = origin.line as usize;
        let args = TaskArgs {
            task: task.id.0,
            uri: Some(uri.clone()),
        };
        let lens = |command| to_proto::code_lens(line, command);
        lenses.push(lens(to_proto::command::<ext::ShowLog>(
            &wording::status(task),
            &args,
        )));
        if !task.state.is_terminal() {
            lenses.push(lens(to_proto::command::<ext::Cancel>(
                titles::CANCEL,
                &args,
            )));
        } else if task.head_commit.is_some() {
            lenses.push(lens(to_proto::command::<ext::ShowDiff>(
                titles::OPEN_DIFF,
                &args,
            )));
        }
    }
    for p in server.session.placed_hunks(&doc).iter() {
        let (start, _) = p.lines();
        let hunk = HunkArgs {
            task: p.task.0,
            uri: uri.clone(),
            hunk: Some(p.hunk.index),
        };
        if p.is_conflict() {
            let task = TaskArgs {
                task: p.task.0,
                uri: Some(uri.clone()),
            };
            lenses.push(to_proto::code_lens(
                start,
                to_proto::command::<ext::ShowDiff>(&titles::conflict_lens(p.task), &task),
            ));
        } else {
            lenses.push(to_proto::code_lens(
                start,
                to_proto::command::<ext::Accept>(&titles::accept_lens(p.task), &hunk),
            ));
        }
        lenses.push(to_proto::code_lens(
            start,
            to_proto::command::<ext::Reject>(titles::REJECT, &hunk),
        ));
        if !p.comments.is_empty() {
            let task = TaskArgs {
                task: p.task.0,
                uri: Some(uri.clone()),
            };
            lenses.push(to_proto::code_lens(
                start,
                to_proto::command::<ext::SendComments>(
                    &titles::comments_lens(p.task, p.comments.len()),
                    &task,
                ),
            ));
        }
    }
    lenses
}
