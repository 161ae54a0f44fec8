//! The `LanguageServer` implementation: receives requests and notifications and hands
//! them to the handler modules. No domain logic lives here.
//!
//! Ordering: tower-lsp-server runs handlers concurrently. Document-sync handlers
//! (`didOpen`, `didChange`, `didClose`) update the session before their first
//! `.await`, and handlers start in arrival order, so a request that arrives after a
//! change always sees it.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use serde_json::Value;
use tower_lsp_server::jsonrpc::{Error, ErrorCode, Result};
use tower_lsp_server::ls_types::*;
use tower_lsp_server::{Client, LanguageServer};

use super::convert;
use super::ext;
use super::session::{lock, ClientFeatures, Repo, Session};
use super::{actions, commands, documents, lenses, watcher};
use crate::engine::Engine;
use crate::sandbox::DockerSandbox;
use crate::sandbox::Sandbox;

/// Makes the sandbox each repository's engine runs on (Docker in `handoff lsp`, a fake
/// in the unit tests).
pub type SandboxFactory<S> = Arc<dyn Fn() -> S + Send + Sync>;

pub struct Inner<S: Sandbox> {
    pub client: Client,
    pub sandbox: SandboxFactory<S>,
    pub session: Mutex<Session>,
    pub repos: Mutex<HashMap<PathBuf, Arc<Repo<S>>>>,
    pub roots: Mutex<Vec<PathBuf>>,
    pub watcher: Mutex<Option<tokio::task::JoinHandle<()>>>,
    pub progress: tokio::sync::Mutex<watcher::Progresses>,
}

pub struct Backend<S: Sandbox = DockerSandbox>(pub Arc<Inner<S>>);

impl Backend<DockerSandbox> {
    pub fn new(client: Client) -> Backend<DockerSandbox> {
        Backend::with_sandbox(client, Arc::new(DockerSandbox::new))
    }
}

impl<S: Sandbox> Backend<S> {
    pub fn with_options(
        client: Client,
        sandbox: SandboxFactory<S>,
        _options: super::Options,
    ) -> Backend<S> {
        Backend::with_sandbox(client, sandbox)
    }

    pub fn with_sandbox(client: Client, sandbox: SandboxFactory<S>) -> Backend<S> {
        Backend(Arc::new(Inner {
            client,
            sandbox,
            session: Mutex::new(Session::default()),
            repos: Mutex::new(HashMap::new()),
            roots: Mutex::new(Vec::new()),
            watcher: Mutex::new(None),
            progress: tokio::sync::Mutex::new(Default::default()),
        }))
    }
}

/// A user-facing failure of a request: the message says what and what to do.
pub fn failure(message: impl Into<String>) -> Error {
    Error {
        code: ErrorCode::ServerError(-32803),
        message: message.into().into(),
        data: None,
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

impl<S: Sandbox> Inner<S> {
    /// The repository containing `path`, opened once per server.
    pub fn repo_for_path(&self, path: &Path) -> std::result::Result<Arc<Repo<S>>, String> {
        let (workdir, _) = Engine::<S>::find_repo(path).map_err(|e| e.to_string())?;
        if let Some(repo) = lock(&self.repos).get(&workdir) {
            return Ok(repo.clone());
        }
        let engine = Engine::open(&workdir, (self.sandbox)()).map_err(|e| e.to_string())?;
        let repo = Arc::new(Repo::new(engine));
        lock(&self.repos).insert(workdir, repo.clone());
        Ok(repo)
    }

    /// The repository of `uri`, or of the first workspace folder.
    pub fn repo_for_uri(&self, uri: Option<&Uri>) -> std::result::Result<Arc<Repo<S>>, String> {
        let path = match uri {
            Some(uri) => convert::path_from_uri(uri).ok_or_else(|| {
                format!(
                    "{} is not a file on disk; save it inside a git repository first",
                    uri.as_str()
                )
            })?,
            None => lock(&self.roots)
                .first()
                .cloned()
                .ok_or("no workspace folder is open; open a folder inside a git repository")?,
        };
        self.repo_for_path(&path)
    }

    pub fn all_repos(&self) -> Vec<Arc<Repo<S>>> {
        lock(&self.repos).values().cloned().collect()
    }

    pub fn features(&self) -> ClientFeatures {
        lock(&self.session).features
    }

    /// Shows an error to the user and returns it as the request's error.
    pub async fn fail<T>(&self, message: String) -> Result<T> {
        self.client
            .show_message(MessageType::ERROR, format!("Handoff: {message}"))
            .await;
        Err(failure(message))
    }
}

fn client_features(params: &InitializeParams) -> ClientFeatures {
    let caps = &params.capabilities;
    let option = |name: &str| {
        params
            .initialization_options
            .as_ref()
            .and_then(|o| o.get(name))
            .and_then(Value::as_bool)
            .unwrap_or(true)
    };
    let text = caps.text_document.as_ref();
    let workspace = caps.workspace.as_ref();
    ClientFeatures {
        code_action_resolve: text
            .and_then(|t| t.code_action.as_ref())
            .and_then(|c| c.resolve_support.as_ref())
            .is_some_and(|r| r.properties.iter().any(|p| p == "command" || p == "edit")),
        work_done_progress: caps
            .window
            .as_ref()
            .and_then(|w| w.work_done_progress)
            .unwrap_or(false),
        document_changes: workspace
            .and_then(|w| w.workspace_edit.as_ref())
            .and_then(|e| e.document_changes)
            .unwrap_or(false),
        code_lens_refresh: workspace
            .and_then(|w| w.code_lens.as_ref())
            .and_then(|c| c.refresh_support)
            .unwrap_or(false),
        show_document: caps
            .window
            .as_ref()
            .and_then(|w| w.show_document.as_ref())
            .is_some_and(|s| s.support),
        task_messages: option("taskMessages"),
        error_messages: option("errorMessages"),
    }
}

impl<S: Sandbox> LanguageServer for Backend<S> {
    async fn initialize(&self, params: InitializeParams) -> Result<InitializeResult> {
        let encoding = convert::negotiate_encoding(&params);
        {
            let mut session = lock(&self.0.session);
            session.encoding = Some(encoding);
            session.features = client_features(&params);
        }
        let mut roots: Vec<PathBuf> = params
            .workspace_folders
            .iter()
            .flatten()
            .filter_map(|f| convert::path_from_uri(&f.uri))
            .collect();
        #[allow(deprecated)]
        if let Some(root) = params.root_uri.as_ref().and_then(convert::path_from_uri) {
            roots.push(root);
        }
        *lock(&self.0.roots) = roots;
        Ok(InitializeResult {
            server_info: Some(ServerInfo {
                name: "handoff".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            }),
            capabilities: ServerCapabilities {
                position_encoding: Some(convert::encoding_to_proto(encoding)),
                text_document_sync: Some(TextDocumentSyncCapability::Options(
                    TextDocumentSyncOptions {
                        open_close: Some(true),
                        change: Some(TextDocumentSyncKind::INCREMENTAL),
                        ..Default::default()
                    },
                )),
                code_action_provider: Some(CodeActionProviderCapability::Options(
                    CodeActionOptions {
                        code_action_kinds: Some(vec![
                            CodeActionKind::QUICKFIX,
                            CodeActionKind::REFACTOR,
                        ]),
                        resolve_provider: Some(true),
                        ..Default::default()
                    },
                )),
                code_lens_provider: Some(CodeLensOptions {
                    resolve_provider: Some(false),
                }),
                execute_command_provider: Some(ExecuteCommandOptions {
                    commands: ext::ALL_COMMANDS.iter().map(|c| c.to_string()).collect(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            offset_encoding: None,
        })
    }

    async fn initialized(&self, _: InitializedParams) {
        let roots = lock(&self.0.roots).clone();
        for root in roots {
            // Open repositories up front so tasks started elsewhere show at once.
            if let Err(e) = self.0.repo_for_path(&root) {
                tracing::info!(root = %root.display(), error = %e, "workspace folder is not usable");
            }
        }
        let handle = tokio::spawn(watcher::run(self.0.clone()));
        *lock(&self.0.watcher) = Some(handle);
        self.0
            .client
            .log_message(MessageType::INFO, "handoff language server ready")
            .await;
    }

    async fn shutdown(&self) -> Result<()> {
        if let Some(w) = lock(&self.0.watcher).take() {
            w.abort();
        }
        Ok(())
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        documents::did_open(&self.0, params);
        documents::publish(&self.0, &uri_of_open(&self.0)).await;
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        let uri = params.text_document.uri.clone();
        documents::did_change(&self.0, params);
        documents::publish(&self.0, &[uri]).await;
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        let uri = params.text_document.uri.clone();
        lock(&self.0.session).documents.remove(&uri);
        self.0.client.publish_diagnostics(uri, vec![], None).await;
    }

    async fn code_action(&self, params: CodeActionParams) -> Result<Option<CodeActionResponse>> {
        guarded("codeAction", async {
            Ok(Some(actions::code_actions(&self.0, &params)))
        })
        .await
    }

    async fn code_action_resolve(&self, action: CodeAction) -> Result<CodeAction> {
        guarded("codeAction/resolve", async {
            actions::resolve(&self.0, action)
        })
        .await
    }

    async fn code_lens(&self, params: CodeLensParams) -> Result<Option<Vec<CodeLens>>> {
        guarded("codeLens", async {
            Ok(Some(lenses::code_lenses(
                &self.0,
                &params.text_document.uri,
            )))
        })
        .await
    }

    async fn execute_command(&self, params: ExecuteCommandParams) -> Result<Option<Value>> {
        guarded("executeCommand", commands::execute(&self.0, params)).await
    }
}

/// The most recently opened documents' URIs (did_open publishes for all of them: a
/// new document may be the first of its repository, which opens its tasks).
fn uri_of_open<S: Sandbox>(inner: &Inner<S>) -> Vec<Uri> {
    lock(&inner.session).documents.keys().cloned().collect()
}
