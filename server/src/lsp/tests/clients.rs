//! The kinds of LSP client the tests play: what each declares at `initialize`, and
//! how it answers the server's requests. Facts about real clients:
//! `/work/shared/notes/lsp-clients.md` (Eglot, lsp-mode, ALE, YouCompleteMe, Neovim).

use std::time::Duration;

use serde_json::{json, Value};

/// How the client answers the server's requests (`workspace/applyEdit`,
/// `window/workDoneProgress/create`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answers {
    /// At once. Edits are applied, then answered, then the `didChange` is sent.
    Promptly,
    /// Edits are applied and sent as `didChange` first; the answer follows after a
    /// delay (what most clients do, with the user's confirmation in between).
    ChangeFirst(Duration),
    /// Never answers any request. With `applies_edits`, still applies
    /// `workspace/applyEdit` and sends the `didChange` (Vim's ALE).
    Never { applies_edits: bool },
}

#[derive(Debug, Clone)]
pub struct Profile {
    pub name: &'static str,
    pub capabilities: Value,
    pub initialization_options: Option<Value>,
    pub answers: Answers,
}

impl Profile {
    /// VS Code with the Handoff extension: every feature, UTF-16 only.
    pub fn vscode() -> Profile {
        Profile {
            name: "vscode",
            capabilities: json!({
                "general": { "positionEncodings": ["utf-16"] },
                "textDocument": {
                    "synchronization": { "dynamicRegistration": true },
                    "codeAction": {
                        "codeActionLiteralSupport": { "codeActionKind": { "valueSet": ["", "quickfix", "refactor"] } },
                        "isPreferredSupport": true,
                        "dataSupport": true,
                        "resolveSupport": { "properties": ["edit"] }
                    },
                    "codeLens": {},
                    "publishDiagnostics": { "versionSupport": true, "dataSupport": true }
                },
                "workspace": {
                    "applyEdit": true,
                    "workspaceEdit": { "documentChanges": true },
                    "codeLens": { "refreshSupport": true }
                },
                "window": { "workDoneProgress": true, "showDocument": { "support": true }, "showMessage": {} }
            }),
            initialization_options: Some(
                json!({ "taskMessages": false, "handoffNotifications": true, "commentInput": true }),
            ),
            answers: Answers::Promptly,
        }
    }

    /// Neovim ≥ 0.10 with the Handoff plugin: UTF-8 offered, everything else too.
    pub fn neovim() -> Profile {
        Profile {
            name: "neovim",
            capabilities: json!({
                "general": { "positionEncodings": ["utf-8", "utf-16", "utf-32"] },
                "textDocument": {
                    "codeAction": {
                        "codeActionLiteralSupport": { "codeActionKind": { "valueSet": ["", "quickfix", "refactor"] } },
                        "isPreferredSupport": true,
                        "dataSupport": true,
                        "resolveSupport": { "properties": ["edit", "command"] }
                    },
                    "codeLens": {},
                    "publishDiagnostics": { "dataSupport": true }
                },
                "workspace": {
                    "applyEdit": true,
                    "workspaceEdit": { "documentChanges": true },
                    "codeLens": { "refreshSupport": true }
                },
                "window": { "workDoneProgress": true, "showDocument": { "support": true } }
            }),
            initialization_options: Some(
                json!({ "handoffNotifications": true, "commentInput": true }),
            ),
            answers: Answers::Promptly,
        }
    }

    /// The least a client may declare: no code action literals, no applyEdit, no
    /// progress, no CodeLens, positions in UTF-16, no initialization options.
    pub fn strict() -> Profile {
        Profile {
            name: "strict",
            capabilities: json!({}),
            initialization_options: None,
            answers: Answers::Promptly,
        }
    }

    /// Declares everything (applyEdit, progress, lens refresh) and never answers a
    /// server request: the user never confirms the edit.
    pub fn never_answers() -> Profile {
        Profile {
            name: "never_answers",
            answers: Answers::Never {
                applies_edits: false,
            },
            ..Profile::neovim()
        }
    }

    /// Like Vim's ALE: code action literals, no `workspace.applyEdit` declared, and
    /// never an answer to a server request (it applies edits all the same).
    pub fn ale() -> Profile {
        Profile {
            name: "ale",
            capabilities: json!({
                "textDocument": {
                    "codeAction": {
                        "codeActionLiteralSupport": { "codeActionKind": { "valueSet": ["", "quickfix", "refactor"] } }
                    }
                },
                "workspace": { "applyEdit": false }
            }),
            initialization_options: None,
            answers: Answers::Never {
                applies_edits: true,
            },
        }
    }

    /// Sends the `didChange` of an applied edit, then answers `applyEdit` later.
    pub fn change_first() -> Profile {
        Profile {
            name: "change_first",
            answers: Answers::ChangeFirst(Duration::from_millis(400)),
            ..Profile::neovim()
        }
    }
}
