//! Failed requests as values: what kind of failure it is — which a client can act on
//! without reading English: it travels as the JSON-RPC error code and as `data.kind` —
//! and a message for the user that says what failed and what to do.

use serde::{Deserialize, Serialize};

use crate::engine::store::StoreError;
use crate::engine::EngineError;
use crate::git::GitError;
use crate::sandbox::SandboxError;

/// Kinds of failure, each with its JSON-RPC error code (`docs/protocol.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ErrorKind {
    /// The command's arguments are malformed or name something impossible.
    InvalidArgument,
    /// No such task, open document, repository or pending change.
    NotFound,
    /// The document changed since the action was offered.
    StaleDocument,
    /// The container engine does not answer.
    DockerUnreachable,
    /// The user edited the lines a change replaces.
    Conflict,
    /// The client lacks what the request needs (e.g. `workspace.applyEdit`).
    Unsupported,
    /// Anything else; the message says what.
    Failed,
}

impl ErrorKind {
    /// The JSON-RPC error code. Standard codes where one fits (invalid params, LSP's
    /// ContentModified and RequestFailed), Handoff's own in the server range otherwise.
    pub fn code(self) -> i64 {
        match self {
            ErrorKind::InvalidArgument => -32602,
            ErrorKind::StaleDocument => -32801,
            ErrorKind::Failed => -32803,
            ErrorKind::NotFound => -32010,
            ErrorKind::DockerUnreachable => -32011,
            ErrorKind::Conflict => -32012,
            ErrorKind::Unsupported => -32013,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct LspError {
    pub kind: ErrorKind,
    pub message: String,
}

impl LspError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> LspError {
        LspError {
            kind,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> LspError {
        LspError::new(ErrorKind::InvalidArgument, message)
    }

    pub fn not_found(message: impl Into<String>) -> LspError {
        LspError::new(ErrorKind::NotFound, message)
    }

    pub fn stale(message: impl Into<String>) -> LspError {
        LspError::new(ErrorKind::StaleDocument, message)
    }

    pub fn failed(message: impl Into<String>) -> LspError {
        LspError::new(ErrorKind::Failed, message)
    }
}

impl From<EngineError> for LspError {
    fn from(e: EngineError) -> LspError {
        let kind = match &e {
            EngineError::Sandbox(SandboxError::Unreachable { .. }) => ErrorKind::DockerUnreachable,
            EngineError::Store(StoreError::NotFound(_)) => ErrorKind::NotFound,
            EngineError::Git(GitError::NotARepository { .. }) => ErrorKind::NotFound,
            _ => ErrorKind::Failed,
        };
        LspError::new(kind, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::task::TaskId;

    #[test]
    fn engine_errors_keep_their_kind() {
        let cases = [
            (
                EngineError::Sandbox(SandboxError::Unreachable {
                    endpoint: "unix:///x".into(),
                    message: "down".into(),
                }),
                ErrorKind::DockerUnreachable,
            ),
            (
                EngineError::Store(StoreError::NotFound(TaskId(4))),
                ErrorKind::NotFound,
            ),
            (
                EngineError::Invalid("the reply is empty".into()),
                ErrorKind::Failed,
            ),
        ];
        for (engine, kind) in cases {
            let message = engine.to_string();
            let e = LspError::from(engine);
            assert_eq!((e.kind, e.message), (kind, message));
        }
    }
}
