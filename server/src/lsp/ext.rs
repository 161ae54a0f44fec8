//! Handoff's extensions to LSP: command names, their arguments, and custom
//! notifications. Documented in `docs/protocol.md`; keep the two in step.

use serde::{Deserialize, Serialize};
use tower_lsp_server::ls_types::notification::Notification;
use tower_lsp_server::ls_types::{Range, Uri};

use crate::engine::task::Task;

pub const DELEGATE: &str = "handoff.delegate";
pub const ACCEPT: &str = "handoff.accept";
pub const REJECT: &str = "handoff.reject";
pub const CANCEL: &str = "handoff.cancel";
pub const REPLY: &str = "handoff.reply";
pub const SHOW_DIFF: &str = "handoff.showDiff";
pub const SHOW_LOG: &str = "handoff.showLog";
pub const LIST_TASKS: &str = "handoff.listTasks";
pub const REMOVE_TASK: &str = "handoff.removeTask";

pub const ALL_COMMANDS: &[&str] = &[
    DELEGATE,
    ACCEPT,
    REJECT,
    CANCEL,
    REPLY,
    SHOW_DIFF,
    SHOW_LOG,
    LIST_TASKS,
    REMOVE_TASK,
];

/// Instructions a plain client can pick for a selection (`window/showMessageRequest`)
/// when no instruction came with the command.
pub const SELECTION_INSTRUCTIONS: &[(&str, &str)] = &[
    (
        "Implement",
        "Implement what the selected code describes or stubs out.",
    ),
    ("Fix", "Find and fix the bugs in the selected code."),
    ("Add tests", "Add tests that cover the selected code."),
    (
        "Refactor",
        "Refactor the selected code for clarity without changing its behaviour.",
    ),
    (
        "Document",
        "Write documentation comments for the selected code.",
    ),
];

/// Arguments of `handoff.delegate`, one object, told apart by `kind`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum DelegateArgs {
    /// The TODO comment on `line` of the document.
    #[serde(rename_all = "camelCase")]
    Todo {
        uri: Uri,
        line: u32,
        /// The document version the action was computed for; a newer document is
        /// re-checked, an older one refused.
        version: Option<i32>,
        agent: Option<String>,
        /// Filled by `codeAction/resolve`; built at execution otherwise.
        prompt: Option<String>,
        /// The task's one-line title, filled with `prompt`.
        title: Option<String>,
    },
    /// The selected `range`, with the user's instruction. Without `instruction` the
    /// server asks with `window/showMessageRequest`.
    #[serde(rename_all = "camelCase")]
    Selection {
        uri: Uri,
        range: Range,
        version: Option<i32>,
        instruction: Option<String>,
        agent: Option<String>,
    },
    /// A free-text task for the whole repository (the command palette). `uri` is
    /// any file or folder in the repository; the first workspace folder otherwise.
    #[serde(rename_all = "camelCase")]
    Prompt {
        prompt: String,
        agent: Option<String>,
        uri: Option<Uri>,
    },
}

/// Arguments of `handoff.accept` and `handoff.reject`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HunkArgs {
    pub task: u64,
    /// The open document the hunk is in.
    pub uri: Uri,
    /// The hunk's index within the file; absent means every pending hunk of the task
    /// in this document ("Accept all changes from task #N").
    pub hunk: Option<usize>,
}

/// Arguments of `handoff.cancel`, `handoff.showDiff`, `handoff.showLog`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskArgs {
    pub task: u64,
    /// Any file in the task's repository; the first workspace folder otherwise.
    pub uri: Option<Uri>,
}

/// Arguments of `handoff.reply`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplyArgs {
    pub task: u64,
    pub message: String,
    pub uri: Option<Uri>,
}

/// Arguments of `handoff.listTasks` (all optional).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListArgs {
    pub uri: Option<Uri>,
}

/// Arguments of `handoff.removeTask`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoveArgs {
    pub task: u64,
    /// Also delete the task's branch.
    #[serde(default)]
    pub delete_branch: bool,
    pub uri: Option<Uri>,
}

/// `handoff/taskRemoved`: a task's record is gone (`handoff rm`, from any front-end).
pub enum TaskRemoved {}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskRemovedParams {
    pub repository: String,
    pub task: u64,
}

impl Notification for TaskRemoved {
    type Params = TaskRemovedParams;
    const METHOD: &'static str = "handoff/taskRemoved";
}

/// `handoff/taskChanged`: a task was created or changed state (from any front-end).
pub enum TaskChanged {}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskChangedParams {
    /// The repository's working tree.
    pub repository: String,
    pub task: Task,
}

impl Notification for TaskChanged {
    type Params = TaskChangedParams;
    const METHOD: &'static str = "handoff/taskChanged";
}

/// What code actions carry in `data` until `codeAction/resolve` fills them in.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionData {
    pub delegate: DelegateArgs,
}
