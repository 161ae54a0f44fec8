//! `handoff lsp`: the Language Server Protocol front-end.
//!
//! A thin protocol layer: handlers parse, convert positions (only in `convert`), and
//! call the engine. Nothing but the protocol is written to stdout; logs go to a file
//! (`$XDG_STATE_HOME/handoff/lsp.log`, default `~/.local/state/handoff/lsp.log`) and
//! warnings also to `window/logMessage`.

mod actions;
mod commands;
pub mod convert;
mod documents;
pub mod ext;
mod lenses;
mod server;
mod session;
mod watcher;

use std::path::PathBuf;

use tower_lsp_server::{LspService, Server};

pub use server::Backend;

/// Where the language server writes its log.
pub fn log_path() -> PathBuf {
    crate::config::state_dir().join("lsp.log")
}

/// Serves LSP on stdin/stdout until the client exits.
pub async fn serve() {
    let (service, socket) = LspService::build(Backend::new).finish();
    Server::new(tokio::io::stdin(), tokio::io::stdout(), socket)
        .serve(service)
        .await;
}
