//! The editor at the other end of the connection: what it said it can do
//! ([`ClientFeatures`], fixed at `initialize`), and every message the server sends it.
//! Whether a message suits this client is decided here, once, not at each call site.
//!
//! No wait on the client is unbounded: some never answer a server request (Vim's
//! ALE), others answer after the user confirmed (Eglot asks "Proceed?"). Requests the
//! user takes no part in are bounded by [`Options::client_timeout`] and sent from
//! background tasks, `workspace/applyEdit` by [`Options::apply_edit_timeout`]; only
//! [`Editor::ask`] waits as long as the user takes, and only in the background.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use tower_lsp_server::ls_types::*;
use tower_lsp_server::Client;

use super::convert;
use super::ext::{TaskChanged, TaskChangedParams, TaskRemoved, TaskRemovedParams};
use super::Options;

/// What the client told us it can do, reduced to what changes our behaviour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientFeatures {
    /// `codeActionLiteralSupport`: code actions as `CodeAction`s, else as `Command`s.
    pub code_action_literals: bool,
    pub code_action_resolve: bool,
    /// `workspace.applyEdit`: the server may send `workspace/applyEdit`.
    pub apply_edit: bool,
    pub work_done_progress: bool,
    pub document_changes: bool,
    pub code_lens_refresh: bool,
    pub show_document: bool,
    /// `initializationOptions.taskMessages`.
    pub task_messages: bool,
    /// `initializationOptions.errorMessages`.
    pub error_messages: bool,
    /// `initializationOptions.handoffNotifications`: send `handoff/*` notifications.
    pub handoff_notifications: bool,
    /// `initializationOptions.commentInput`: the client asks for comment text itself.
    pub comment_input: bool,
}

/// How a `workspace/applyEdit` ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyOutcome {
    Applied,
    /// The client answered that it did not apply it, maybe saying why.
    Refused(Option<String>),
    /// The client answered with an error.
    Failed(String),
    /// No answer within the timeout.
    NoAnswer(Duration),
}

pub struct Editor {
    client: Client,
    features: OnceLock<ClientFeatures>,
    options: Options,
}

impl Editor {
    pub fn new(client: Client, options: Options) -> Editor {
        Editor {
            client,
            features: OnceLock::new(),
            options,
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

    /// `handoff/taskChanged`, to clients that asked for it.
    pub async fn task_changed(&self, params: TaskChangedParams) {
        if self.features().handoff_notifications {
            self.client.send_notification::<TaskChanged>(params).await;
        }
    }

    /// `handoff/taskRemoved`, to clients that asked for it.
    pub async fn task_removed(&self, params: TaskRemovedParams) {
        if self.features().handoff_notifications {
            self.client.send_notification::<TaskRemoved>(params).await;
        }
    }

    /// Sends `workspace/applyEdit` and waits for the answer, at most
    /// [`Options::apply_edit_timeout`]. Call it from a background task: the client may
    /// ask the user first.
    pub async fn apply_edit(&self, edit: WorkspaceEdit) -> ApplyOutcome {
        if !self.features().apply_edit {
            return ApplyOutcome::Failed("the editor does not support workspace/applyEdit".into());
        }
        let wait = self.options.apply_edit_timeout;
        let deadline = tokio::time::Instant::now() + wait;
        let answer = self.client.apply_edit(edit);
        tokio::pin!(answer);
        // Eglot (Emacs 28's jsonrpc.el) leaves unread whatever arrived in the same read
        // as the answer to its synchronous `executeCommand` — here this request, sent
        // right behind `handoff.accept`'s answer — until the server writes again. A log
        // line now and then makes it read on; other clients just log it.
        let first = tokio::time::Instant::now() + self.options.apply_edit_nudge;
        let mut nudge = tokio::time::interval_at(first, Duration::from_secs(1));
        loop {
            tokio::select! {
                answer = &mut answer => return match answer {
                    Ok(r) if r.applied => ApplyOutcome::Applied,
                    Ok(r) => ApplyOutcome::Refused(r.failure_reason),
                    Err(e) => ApplyOutcome::Failed(e.message.to_string()),
                },
                _ = tokio::time::sleep_until(deadline) => return ApplyOutcome::NoAnswer(wait),
                _ = nudge.tick() => {
                    self.log_message(MessageType::LOG, "handoff: waiting for the editor to apply an edit").await;
                }
            }
        }
    }

    /// Asks the client to show a file; false if it cannot, did not, or did not say
    /// within [`Options::client_timeout`].
    pub async fn show_document(&self, uri: Uri) -> bool {
        if !self.features().show_document {
            return false;
        }
        let shown = self
            .client
            .show_document(convert::to_proto::show_document(uri));
        self.bounded(shown)
            .await
            .and_then(Result::ok)
            .unwrap_or(false)
    }

    /// Asks the client to request CodeLenses again (task states changed), without
    /// waiting for its answer.
    pub fn refresh_lenses(&self) {
        if self.features().code_lens_refresh {
            let client = self.client.clone();
            let wait = self.options.client_timeout;
            // Bounded, so it ends by itself even if the client never answers.
            tokio::spawn(async move {
                let _ = tokio::time::timeout(wait, client.code_lens_refresh()).await;
            });
        }
    }

    /// Creates a work-done progress; false if the client refused it or did not answer
    /// within [`Options::client_timeout`].
    pub async fn create_progress(&self, token: ProgressToken) -> bool {
        let created = self.client.create_work_done_progress(token);
        matches!(self.bounded(created).await, Some(Ok(())))
    }

    async fn bounded<T>(&self, answer: impl Future<Output = T>) -> Option<T> {
        tokio::time::timeout(self.options.client_timeout, answer)
            .await
            .ok()
    }

    pub async fn progress(&self, token: ProgressToken, value: WorkDoneProgress) {
        self.client
            .send_notification::<notification::Progress>(convert::to_proto::progress(token, value))
            .await;
    }

    /// Asks the user to pick one of `choices`; waits as long as the user takes, so
    /// call it from a background task, never from a request handler.
    pub async fn ask(&self, message: &str, choices: &[&str]) -> Option<String> {
        self.ask_with(message, convert::to_proto::message_actions(choices))
            .await
    }

    /// [`Editor::ask`] with actions that may carry more than their title.
    pub async fn ask_with(&self, message: &str, actions: Vec<MessageActionItem>) -> Option<String> {
        let picked = self
            .client
            .show_message_request(MessageType::INFO, message, Some(actions))
            .await
            .ok()??;
        Some(picked.title)
    }
}
