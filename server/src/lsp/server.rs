//! The `LanguageServer` implementation: receives requests and notifications and hands
//! them to `handlers`. No domain logic lives here.
//!
//! Ordering: tower-lsp-server runs handlers concurrently. Document-sync handlers
//! (`didOpen`, `didChange`, `didClose`) update the session before their first
//! `.await`, and handlers start in arrival order, so a request that arrives after a
//! change always sees it.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;
use serde_json::Value;
use tower_lsp_server::jsonrpc::{Error, ErrorCode, Result};
use tower_lsp_server::ls_types::*;
use tower_lsp_server::{Client, LanguageServer};

use super::convert::{from_proto, to_proto};
use super::editor::Editor;
use super::error::LspError;
use super::handlers;
use super::session::{SandboxFactory, Session};
use super::{watcher, Options};
use crate::sandbox::{AnySandbox, Sandbox};

/// The server's state and its connection to the editor, shared by every handler.
pub struct Server<S: Sandbox> {
    pub session: Session<S>,
    pub editor: Editor,
    pub options: Options,
}

impl<S: Sandbox> Server<S> {
    /// Shows a failure to the user (unless the client said it shows errors itself);
    /// true if it was shown.
    pub async fn show_failure(&self, e: &LspError) -> bool {
        if !self.editor.features().error_messages {
            return false;
        }
        self.editor
            .show_message(MessageType::ERROR, format!("Handoff: {}", e.message))
            .await;
        true
    }

    /// A failed request's error response, shown to the user first.
    async fn fail(&self, e: LspError) -> Error {
        tracing::info!(kind = ?e.kind, message = %e.message, "request failed");
        let shown = self.show_failure(&e).await;
        to_proto::error(&e, shown)
    }
}

/// `handoff lsp`: the language server, generic over the sandbox its engines run on.
pub struct Backend<S: Sandbox = AnySandbox>(Arc<Server<S>>);

impl Backend<AnySandbox> {
    pub fn new(client: Client) -> Backend<AnySandbox> {
        Backend::with_options(
            client,
            Arc::new(|config: &crate::config::Config| AnySandbox::for_engine(&config.engine)),
            Options::default(),
        )
    }
}

impl<S: Sandbox> Backend<S> {
    pub fn with_options(
        client: Client,
        sandbox: SandboxFactory<S>,
        options: Options,
    ) -> Backend<S> {
        Backend(Arc::new(Server {
            session: Session::new(sandbox),
            editor: Editor::new(client, options),
            options,
        }))
    }
}

/// Runs a handler, turning a panic into an error response: the server never dies
/// across the protocol boundary.
async fn guarded<T>(what: &str, fut: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    match AssertUnwindSafe(fut).catch_unwind().await {
        Ok(r) => r,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            tracing::error!(what, %msg, "handler panicked");
            Err(Error {
                code: ErrorCode::InternalError,
                message: format!("handoff: internal error in {what}: {msg}").into(),
                data: None,
            })
        }
    }
}

impl<S: Sandbox> LanguageServer for Backend<S> {
    async fn initialize(&self, params: InitializeParams) -> Result<InitializeResult> {
        let encoding = from_proto::negotiate_encoding(&params);
        self.0
            .session
            .initialize(encoding, from_proto::roots(&params));
        self.0
            .editor
            .set_features(from_proto::client_features(&params));
        Ok(to_proto::initialize_result(encoding))
    }

    async fn initialized(&self, _: InitializedParams) {
        for root in self.0.session.roots() {
            // Open repositories up front so tasks started elsewhere show at once.
            if let Err(e) = self.0.session.repo_for_path(&root) {
                tracing::info!(root = %root.display(), error = %e, "workspace folder is not usable");
            }
        }
        self.0.session.spawn(watcher::run(self.0.clone()));
        self.0
            .editor
            .log_message(MessageType::INFO, "handoff language server ready")
            .await;
    }

    async fn shutdown(&self) -> Result<()> {
        self.0.session.shutdown();
        Ok(())
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        handlers::documents::did_open(&self.0, params).await;
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        handlers::documents::did_change(&self.0, params).await;
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        handlers::documents::did_close(&self.0, params).await;
    }

    async fn code_action(&self, params: CodeActionParams) -> Result<Option<CodeActionResponse>> {
        guarded("codeAction", async {
            Ok(Some(handlers::code_action::code_actions(&self.0, &params)))
        })
        .await
    }

    async fn code_action_resolve(&self, action: CodeAction) -> Result<CodeAction> {
        guarded("codeAction/resolve", async {
            match handlers::code_action::resolve(&self.0, action) {
                Ok(action) => Ok(action),
                Err(e) => Err(self.0.fail(e).await),
            }
        })
        .await
    }

    async fn code_lens(&self, params: CodeLensParams) -> Result<Option<Vec<CodeLens>>> {
        guarded("codeLens", async {
            Ok(Some(handlers::code_lens::code_lenses(
                &self.0,
                &params.text_document.uri,
            )))
        })
        .await
    }

    async fn execute_command(&self, params: ExecuteCommandParams) -> Result<Option<Value>> {
        guarded("executeCommand", async {
            match handlers::commands::execute(&self.0, params).await {
                Ok(value) => Ok(value),
                Err(e) => Err(self.0.fail(e).await),
            }
        })
        .await
    }
}
