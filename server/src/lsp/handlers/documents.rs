//! `textDocument/didOpen`, `didChange`, `didClose`: the session follows the editor's
//! buffers, and each change republishes the document's hunk diagnostics.
//!
//! Each handler changes the session before its first `.await`, so a request that
//! arrives after a change always sees it (see `server.rs`).

use std::sync::Arc;

use tower_lsp_server::ls_types::*;

use crate::lsp::server::Server;
use crate::lsp::updates;
use crate::sandbox::Sandbox;

pub async fn did_open<S: Sandbox>(server: &Arc<Server<S>>, params: DidOpenTextDocumentParams) {
    let doc = params.text_document;
    let uri = doc.uri.clone();
    server
        .session
        .open_document(doc.uri, doc.text, doc.version, &doc.language_id);
    if let Some(repo) = server
        .session
        .document(&uri)
        .ok()
        .and_then(|d| server.session.repo_of(&d).ok())
        .and_then(|repo| server.session.with_current_config(repo).ok())
    {
        super::commands::trust::ask_once(server, repo);
    }
    // A new document may be the first of its repository, which opens its tasks: the
    // others may have hunks now too.
    updates::publish(server, &server.session.open_documents()).await;
}

pub async fn did_change<S: Sandbox>(server: &Server<S>, params: DidChangeTextDocumentParams) {
    let uri = params.text_document.uri;
    if server
        .session
        .change_document(&uri, params.text_document.version, params.content_changes)
    {
        updates::publish(server, &[uri]).await;
    }
}

pub async fn did_close<S: Sandbox>(server: &Server<S>, params: DidCloseTextDocumentParams) {
    let uri = params.text_document.uri;
    server.session.close_document(&uri);
    server.editor.publish_diagnostics(uri, vec![], None).await;
}
