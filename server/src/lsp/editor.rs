//! The editor at the other end of the connection: what it said it can do
//! ([`ClientFeatures`], fixed at `initialize`), and every message the server sends it.
//! Whether a message suits this client is decided here, once, not at each call site.

use std::sync::OnceLock;

use tower_lsp_server::ls_types::*;
use tower_lsp_server::Client;

use super::convert;
use super::ext::{TaskChanged, TaskChangedParams, TaskRemoved, TaskRemovedParams};

/// What the client told us it can do, reduced to what changes our behaviour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientFeatures {
    pub code_action_resolve: bool,
    pub work_done_progress: bool,
    pub document_changes: bool,
    pub code_lens_refresh: bool,
    pub show_document: bool,
    /// `initializationOptions.taskMessages`.
    pub task_messages: bool,
    /// `initializationOptions.errorMessages`.
    pub error_messages: bool,
}

pub struct Editor {
    client: Client,
    features: OnceLock<ClientFeatures>,
}

impl Editor {
    pub fn new(client: Client) -> Editor {
        Editor {
            client,
            features: OnceLock::new(),
        }
    }

    /// Records what the client can do; once, at `initialize`.
    pub fn set_features(&self, features: ClientFeatures) {
        let _ = self.features.set(features);
    }

    pub fn features(&self) -> ClientFeatures {
        self.features.get().copied().unwrap_or_default()
    }

    pub async fn show_message(&self, typ: MessageType, message: impl Into<String>) {
        self.client.show_message(typ, message.into()).await;
    }

    pub async fn log_message(&self, typ: MessageType, message: impl Into<String>) {
        self.client.log_message(typ, message.into()).await;
    }

    pub async fn publish_diagnostics(
        &self,
        uri: Uri,
        diagnostics: Vec<Diagnostic>,
        version: Option<i32>,
    ) {
        self.client
            .publish_diagnostics(uri, diagnostics, version)
            .await;
    }

    pub async fn task_changed(&self, params: TaskChangedParams) {
        self.client.send_notification::<TaskChanged>(params).await;
    }

    pub async fn task_removed(&self, params: TaskRemovedParams) {
        self.client.send_notification::<TaskRemoved>(params).await;
    }

    /// Sends `workspace/applyEdit` and waits for the answer.
    pub async fn apply_edit(
        &self,
        edit: WorkspaceEdit,
    ) -> Result<ApplyWorkspaceEditResponse, String> {
        self.client
            .apply_edit(edit)
            .await
            .map_err(|e| e.message.to_string())
    }

    /// Asks the client to show a file; false if it cannot or did not.
    pub async fn show_document(&self, uri: Uri) -> bool {
        if !self.features().show_document {
            return false;
        }
        self.client
            .show_document(convert::to_proto::show_document(uri))
            .await
            .unwrap_or(false)
    }

    /// Asks the client to request CodeLenses again (task states changed).
    pub async fn refresh_lenses(&self) {
        if self.features().code_lens_refresh {
            let _ = self.client.code_lens_refresh().await;
        }
    }

    /// Creates a work-done progress; false if the client refused it.
    pub async fn create_progress(&self, token: ProgressToken) -> bool {
        self.client.create_work_done_progress(token).await.is_ok()
    }

    pub async fn progress(&self, token: ProgressToken, value: WorkDoneProgress) {
        self.client
            .send_notification::<notification::Progress>(convert::to_proto::progress(token, value))
            .await;
    }

    /// Asks the user to pick one of `choices`; waits as long as the user takes, so
    /// call it from a background task, never from a request handler.
    pub async fn ask(&self, message: &str, choices: &[&str]) -> Option<String> {
        let picked = self
            .client
            .show_message_request(
                MessageType::INFO,
                message,
                Some(convert::to_proto::message_actions(choices)),
            )
            .await
            .ok()??;
        Some(picked.title)
    }
}
