//! Handoff's extensions to LSP: commands (`workspace/executeCommand`) with their
//! argument and result types, custom notifications, initialization options, and the
//! `data` of hunk diagnostics and of errors.
//!
//! `docs/protocol.md` documents every type here and records a hash of this file; the
//! test at the end fails when this file changes and the document does not.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tower_lsp_server::ls_types::notification::Notification;
use tower_lsp_server::ls_types::{Range, Uri};

use super::error::ErrorKind;
use crate::engine::task::Task;

/// A command of `workspace/executeCommand`: its name, the one argument object it takes
/// and what it returns.
pub trait ExtCommand {
    const NAME: &'static str;
    type Args: DeserializeOwned + Serialize;
    type Result: Serialize;
}

macro_rules! commands {
    ($($(#[$doc:meta])* $ty:ident = $name:literal, $args:ty => $result:ty;)*) => {
        $(
            $(#[$doc])*
            pub enum $ty {}
            impl ExtCommand for $ty {
                const NAME: &'static str = $name;
                type Args = $args;
                type Result = $result;
            }
        )*
        /// Every command, as the server announces them at `initialize`.
        pub const ALL_COMMANDS: &[&str] = &[$($name),*];
    };
}

commands! {
    /// Starts a task; `null` while the server asks the user for an instruction.
    Delegate = "handoff.delegate", DelegateArgs => Option<Task>;
    /// Accepts one or every pending hunk of a task in an open document.
    Accept = "handoff.accept", HunkArgs => AcceptResult;
    /// Rejects one or every pending hunk of a task in an open document.
    Reject = "handoff.reject", HunkArgs => RejectResult;
    /// Stops a queued or running task.
    Cancel = "handoff.cancel", TaskArgs => Task;
    /// Sends a follow-up to a task.
    Reply = "handoff.reply", ReplyArgs => Task;
    /// Writes the task's unified diff to a file and asks the editor to show it.
    ShowDiff = "handoff.showDiff", TaskArgs => ShownFile;
    /// Writes the agent's output (or transcript) to a file and asks the editor to show it.
    ShowLog = "handoff.showLog", TaskArgs => ShownFile;
    /// The task records of one or every open repository.
    ListTasks = "handoff.listTasks", ListArgs => Vec<ListedTask>;
    /// Removes an ended task (and its branch, if asked).
    RemoveTask = "handoff.removeTask", RemoveArgs => RemoveResult;
    /// Trusts the repository's own configuration (`.handoff.toml`, `.handoff/`) as it
    /// is now, as `handoff trust` does.
    Trust = "handoff.trust", TrustArgs => TrustResult;
    /// Keeps a review comment on a hunk of a finished task, pending until sent.
    Comment = "handoff.comment", CommentArgs => CommentResult;
    /// Sends the task's pending comments to the agent as its next turn.
    SendComments = "handoff.sendComments", TaskArgs => Task;
}

/// Arguments of `handoff.comment`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommentArgs {
    pub task: u64,
    /// The open document the hunk is in.
    pub uri: Uri,
    /// The hunk's index, as in its diagnostic's `data.hunk`.
    pub hunk: usize,
    /// The comment; a client that can ask for text (the bundled extensions) asks first.
    pub text: Option<String>,
}

/// The result of `handoff.comment`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommentResult {
    /// The task's pending comments, this one included.
    pub pending: usize,
}

/// Arguments of `handoff.trust`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustArgs {
    /// A file of the repository; the first workspace folder's when absent.
    pub uri: Option<Uri>,
    /// The content to trust ([`TrustQuestion::sha256`]): when given, the configuration
    /// is trusted only if it still has this hash; else the command fails with
    /// `staleDocument` and the user is asked about the new content.
    #[serde(default)]
    pub sha256: Option<String>,
}

/// The result of `handoff.trust`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustResult {
    /// The repository's working tree.
    pub repository: String,
    /// False when the repository has no configuration of its own to trust.
    pub trusted: bool,
    /// The settings that were ignored until now and apply from now on.
    pub applied: Vec<String>,
}

/// What the question about a repository's untrusted configuration is about. The
/// server asks it with `window/showMessageRequest` (actions "Trust" and "Not now");
/// the "Trust" action carries these fields beside its `title`, so that a client can
/// ask the user in its own way, answer `null`, and run `handoff.trust` itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustQuestion {
    /// The repository's working tree.
    pub repository: String,
    /// The settings of its configuration that are ignored until it is trusted.
    pub ignored: Vec<String>,
    /// The SHA-256 of the configuration content asked about (as `handoff trust`
    /// records it), for `handoff.trust`'s `sha256`.
    pub sha256: String,
}

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

/// `initializationOptions`, all optional.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct InitOptions {
    /// A `window/showMessage` when a task ends (default true). Editor extensions
    /// with their own notifications turn it off.
    pub task_messages: bool,
    /// Failed commands are also shown with `window/showMessage`, not only returned as
    /// errors (default true).
    pub error_messages: bool,
    /// The client handles `handoff/taskChanged` and `handoff/taskRemoved` (default
    /// false: clients that do not know them may warn about each one).
    pub handoff_notifications: bool,
    /// The client asks the user for a comment's text when it runs `handoff.comment`
    /// without one (default false: plain clients cannot, and are offered no comment
    /// action).
    pub comment_input: bool,
}

impl Default for InitOptions {
    fn default() -> InitOptions {
        InitOptions {
            task_messages: true,
            error_messages: true,
            handoff_notifications: false,
            comment_input: false,
        }
    }
}

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
        /// One agent, or several comma-separated (`claude,codex`) taking the attempts
        /// in turn.
        agent: Option<String>,
        uri: Option<Uri>,
        /// Several tasks with the same prompt and snapshot, to compare (the first is
        /// returned; all have its id as their `group`). Default: one per agent named.
        #[serde(default)]
        attempts: Option<usize>,
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

/// Result of `handoff.accept`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AcceptResult {
    /// The hunks the edit accepts.
    pub accepted: Vec<usize>,
    /// Chosen hunks left for review because the user edited their lines.
    pub conflicts: usize,
}

/// Result of `handoff.reject`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RejectResult {
    pub rejected: Vec<usize>,
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

/// Result of `handoff.showDiff` and `handoff.showLog`: the file written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShownFile {
    pub uri: Uri,
    pub path: String,
}

/// Arguments of `handoff.listTasks` (all optional).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListArgs {
    pub uri: Option<Uri>,
}

/// One entry of `handoff.listTasks`: the task record plus its repository.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListedTask {
    #[serde(flatten)]
    pub task: Task,
    /// The repository's working tree, as in `handoff/taskChanged`.
    pub repository: String,
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

/// Result of `handoff.removeTask`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoveResult {
    pub removed: u64,
    pub branch: String,
    pub branch_deleted: bool,
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

/// The `data` of a hunk diagnostic: the whole change, for clients that draw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HunkData {
    pub task: u64,
    /// The hunk's index within the file, as `handoff.accept` takes it.
    pub hunk: usize,
    /// The user edited the lines the hunk replaces: it cannot be accepted here.
    pub conflict: bool,
    /// The lines the hunk replaces, each with its line end.
    pub old_lines: Vec<String>,
    /// The lines the agent proposes instead, each with its line end.
    pub new_lines: Vec<String>,
    /// The file configures tools, editors, agents or CI (`.vscode/`, `.handoff.toml`,
    /// CI files…): accept its hunks one by one, never with "accept all".
    #[serde(default)]
    pub sensitive: bool,
    /// Pending review comments on this hunk (`handoff.comment`), oldest first.
    #[serde(default)]
    pub comments: Vec<String>,
}

/// The `data` of an error response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorData {
    pub kind: ErrorKind,
    /// The server has shown the message to the user already (`window/showMessage`).
    pub shown: bool,
}

/// What code actions carry in `data` until `codeAction/resolve` fills them in.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionData {
    pub delegate: DelegateArgs,
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    /// rust-analyzer's rule for `lsp-extensions.md`: the document records a hash of
    /// this file, so a change here without a look at the document fails.
    #[test]
    fn protocol_md_is_in_step_with_ext_rs() {
        let ext = include_str!("ext.rs").replace("\r\n", "\n");
        let hash = format!("{:x}", Sha256::digest(ext.as_bytes()));
        let doc_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md");
        let doc = std::fs::read_to_string(doc_path).unwrap();
        let recorded = doc
            .lines()
            .find_map(|l| l.strip_prefix("<!-- ext.rs sha256: "))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or("(none)");
        assert_eq!(
            recorded, hash,
            "server/src/lsp/ext.rs changed: update docs/protocol.md to match it, then \
             record the new hash there: <!-- ext.rs sha256: {hash} -->"
        );
    }
}
