//! Open documents: keeping their text in sync, and showing the pending hunks of
//! finished tasks in them as diagnostics of severity Hint.

use std::sync::Arc;

use serde_json::json;
use tower_lsp_server::ls_types::*;

use super::convert;
use super::server::Inner;
use super::session::{hunk_lines, lock, Document, PlacedHunk, RepoPath};
use super::wording;
use crate::context::Language;
use crate::diff::Anchor;
use crate::sandbox::Sandbox;

pub fn did_open<S: Sandbox>(inner: &Inner<S>, params: DidOpenTextDocumentParams) {
    let doc = params.text_document;
    let location = convert::path_from_uri(&doc.uri).and_then(|path| locate(inner, &path));
    let language = Language::detect(
        Some(&doc.language_id),
        location
            .as_ref()
            .map(|l| l.rel.as_str())
            .unwrap_or(doc.uri.as_str()),
    );
    tracing::debug!(uri = doc.uri.as_str(), ?language, ?location, "opened");
    if let Some(repo) = location
        .as_ref()
        .and_then(|l| lock(&inner.repos).get(&l.workdir).cloned())
    {
        // A reopened document may come back with an old version number.
        repo.invalidate();
    }
    let document = Document::new(doc.text, doc.version, language, location);
    lock(&inner.session).documents.insert(doc.uri, document);
}

/// The repository and relative path of a file, if it is inside a usable repository.
fn locate<S: Sandbox>(inner: &Inner<S>, path: &std::path::Path) -> Option<RepoPath> {
    let repo = inner.repo_for_path(path).ok()?;
    let workdir = repo.workdir().canonicalize().ok()?;
    let full = path
        .parent()
        .and_then(|p| p.canonicalize().ok())
        .map(|p| p.join(path.file_name().unwrap_or_default()))?;
    let rel = full.strip_prefix(&workdir).ok()?;
    Some(RepoPath {
        workdir: repo.workdir().to_path_buf(),
        rel: rel.to_str()?.replace(std::path::MAIN_SEPARATOR, "/"),
    })
}

pub fn did_change<S: Sandbox>(inner: &Inner<S>, params: DidChangeTextDocumentParams) {
    let mut session = lock(&inner.session);
    let encoding = session.encoding();
    let Some(doc) = session.documents.get_mut(&params.text_document.uri) else {
        return;
    };
    let mut text = std::mem::take(&mut doc.text);
    for change in params.content_changes {
        match change.range {
            Some(range) => {
                // Positions of each change refer to the text after the previous one.
                let index = crate::diff::LineIndex::new(&text);
                let start = convert::offset(&index, range.start, encoding);
                let end = convert::offset(&index, range.end, encoding).max(start);
                text.replace_range(start..end, &change.text);
            }
            None => text = change.text,
        }
    }
    doc.set_text(text, params.text_document.version);
}

/// Recomputes and sends the hunk diagnostics of the given documents.
pub async fn publish<S: Sandbox>(inner: &Inner<S>, uris: &[Uri]) {
    for uri in uris {
        let Some((diagnostics, version)) = diagnostics_for(inner, uri) else {
            continue;
        };
        inner
            .client
            .publish_diagnostics(uri.clone(), diagnostics, Some(version))
            .await;
    }
}

/// Republishes every open document of the repository at `workdir`.
pub async fn publish_repo<S: Sandbox>(inner: &Inner<S>, workdir: &std::path::Path) {
    let uris: Vec<Uri> = lock(&inner.session)
        .documents
        .iter()
        .filter(|(_, d)| d.location.as_ref().is_some_and(|l| l.workdir == workdir))
        .map(|(u, _)| u.clone())
        .collect();
    publish(inner, &uris).await;
}

/// The placed hunks of an open document, and where it is.
pub fn placed_in<S: Sandbox>(
    inner: &Inner<S>,
    uri: &Uri,
) -> Option<(Arc<Vec<PlacedHunk>>, RepoPath)> {
    let (location, version) = {
        let session = lock(&inner.session);
        let doc = session.documents.get(uri)?;
        (doc.location.clone()?, doc.version)
    };
    let repo = lock(&inner.repos).get(&location.workdir).cloned()?;
    if let Some(placed) = repo.cached_placement(&location.rel, version) {
        return Some((placed, location));
    }
    // Compute outside the session lock: other requests need not wait for it.
    let text = lock(&inner.session).documents.get(uri)?.text.clone();
    Some((repo.placed_hunks(&location.rel, version, &text), location))
}

fn diagnostics_for<S: Sandbox>(inner: &Inner<S>, uri: &Uri) -> Option<(Vec<Diagnostic>, i32)> {
    let (placed, location) = placed_in(inner, uri).unzip();
    let placed = placed.unwrap_or_default();
    let repo = location.and_then(|l| lock(&inner.repos).get(&l.workdir).cloned());
    let title = |id| {
        repo.as_ref()
            .and_then(|r| r.task(id))
            .map(|t| t.title)
            .unwrap_or_default()
    };
    let placed = placed.as_slice();
    let session = lock(&inner.session);
    let doc = session.documents.get(uri)?;
    let diagnostics = placed
        .iter()
        .map(|p| {
            let (start, end) = hunk_lines(p);
            Diagnostic {
                range: convert::line_range(&doc.index, start, end, session.encoding()),
                severity: Some(DiagnosticSeverity::HINT),
                code: Some(NumberOrString::String(format!("handoff#{}", p.task))),
                source: Some("handoff".into()),
                message: wording::hunk_message(
                    p.task,
                    &title(p.task),
                    &p.hunk,
                    match &p.anchor {
                        Anchor::Conflict { reason } => Some(reason),
                        Anchor::Applies { .. } => None,
                    },
                ),
                // The whole change, for clients that draw it (the message is cut).
                data: Some(json!({
                    "task": p.task.0,
                    "hunk": p.hunk.index,
                    "conflict": matches!(p.anchor, Anchor::Conflict { .. }),
                    "oldLines": p.hunk.base_lines,
                    "newLines": p.hunk.new_lines,
                })),
                ..Default::default()
            }
        })
        .collect();
    Some((diagnostics, doc.version))
}
