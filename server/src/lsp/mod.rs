//! `handoff lsp`: the Language Server Protocol front-end.
//!
//! A thin protocol layer: `server` dispatches to `handlers` (one module per request),
//! which ask the `session` (the server's state, behind named operations) and the
//! engine, and answer with values built in `convert`. `editor` is the connection to
//! the client and decides what suits it; `updates` says what changed; `watcher` drives
//! the engines in the background; `wording` holds every word shown about tasks; `ext`
//! and `error` are the protocol's extensions and typed failures. Nothing but the
//! protocol is written to stdout; logs go to a file (`$XDG_STATE_HOME/handoff/lsp.log`,
//! default `~/.local/state/handoff/lsp.log`) and warnings also to `window/logMessage`.
//!
//! The LSP layer holds no domain logic: accept planning is `diff::plan`, prompts are
//! `context`, tasks are the engine's.

pub mod convert;
mod editor;
pub mod error;
pub mod ext;
mod handlers;
mod server;
mod session;
mod updates;
mod watcher;
mod wording;

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

/// How long the server waits on its client, and how often it looks at the task store.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// For an answer to a request the user does not take part in (progress creation,
    /// CodeLens refresh, showing a document).
    pub client_timeout: std::time::Duration,
    /// For the answer to `workspace/applyEdit` (a client may ask the user first).
    pub apply_edit_timeout: std::time::Duration,
    /// Between two looks at the task store.
    pub poll: std::time::Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            client_timeout: std::time::Duration::from_secs(10),
            apply_edit_timeout: std::time::Duration::from_secs(30),
            poll: std::time::Duration::from_millis(500),
        }
    }
}

#[cfg(test)]
mod tests;
