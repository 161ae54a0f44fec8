//! CodeLens: the state of tasks on the line they were delegated from
//! ("⟳ Handoff #12 running 1m32s · Show log · Cancel"), and "Accept | Reject" above
//! each pending hunk.

use serde_json::json;
use tower_lsp_server::ls_types::*;

use super::actions::command;
use super::documents::placed_in;
use super::ext::{self, HunkArgs, TaskArgs};
use super::server::Inner;
use super::session::{hunk_lines, lock};
use super::wording::{self, titles};
use crate::diff::Anchor;
use crate::engine::task::Task;
use crate::sandbox::Sandbox;

fn lens(line: usize, title: String, name: &str, arg: serde_json::Value) -> CodeLens {
    let at = Position::new(line as u32, 0);
    CodeLens {
        range: Range::new(at, at),
        command: Some(command(&title, name, arg)),
        data: None,
    }
}

pub fn code_lenses<S: Sandbox>(inner: &Inner<S>, uri: &Uri) -> Vec<CodeLens> {
    let mut lenses = Vec::new();
    let location = {
        let session = lock(&inner.session);
        match session.documents.get(uri).and_then(|d| d.location.clone()) {
            Some(l) => l,
            None => return lenses,
        }
    };
    let Some(repo) = lock(&inner.repos).get(&location.workdir).cloned() else {
        return lenses;
    };
    let task_arg = |t: &Task| {
        json!(TaskArgs {
            task: t.id.0,
            uri: Some(uri.clone())
        })
    };
    for task in &repo.tasks() {
        let Some(origin) = task.origin.as_ref().filter(|o| o.path == location.rel) else {
            continue;
        };
        let line = origin.line as usize;
        lenses.push(lens(
            line,
            wording::status(task),
            ext::SHOW_LOG,
            task_arg(task),
        ));
        if !task.state.is_terminal() {
            lenses.push(lens(
                line,
                titles::CANCEL.into(),
                ext::CANCEL,
                task_arg(task),
            ));
        } else if task.head_commit.is_some() {
            lenses.push(lens(
                line,
                titles::OPEN_DIFF.into(),
                ext::SHOW_DIFF,
                task_arg(task),
            ));
        }
    }
    if let Some((placed, _)) = placed_in(inner, uri) {
        for p in placed.iter() {
            let (start, _) = hunk_lines(p);
            let arg = json!(HunkArgs {
                task: p.task.0,
                uri: uri.clone(),
                hunk: Some(p.hunk.index)
            });
            match &p.anchor {
                Anchor::Applies { .. } => {
                    lenses.push(lens(
                        start,
                        titles::accept_lens(p.task),
                        ext::ACCEPT,
                        arg.clone(),
                    ));
                    lenses.push(lens(start, titles::REJECT.into(), ext::REJECT, arg));
                }
                Anchor::Conflict { .. } => {
                    let t = json!(TaskArgs {
                        task: p.task.0,
                        uri: Some(uri.clone())
                    });
                    lenses.push(lens(
                        start,
                        titles::conflict_lens(p.task),
                        ext::SHOW_DIFF,
                        t,
                    ));
                    lenses.push(lens(start, titles::REJECT.into(), ext::REJECT, arg));
                }
            }
        }
    }
    lenses
}
