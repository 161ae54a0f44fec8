//! The server's state: open documents with their versions, the negotiated position
//! encoding and client features, and one engine per repository the editor touched.
//!
//! Locks here are `std::sync::Mutex` held for short, synchronous sections only, never
//! across an `.await`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use tower_lsp_server::ls_types::Uri;

use crate::context::Language;
use crate::diff::{reanchor, Anchor, Hunk, LineIndex, PositionEncoding};
use crate::engine::task::{Task, TaskId};
use crate::engine::Engine;
use crate::sandbox::DockerSandbox;

/// Locks a mutex, recovering the data if a panicking thread poisoned it: the state
/// stays usable and the server keeps serving.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Where a document lives in a repository.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RepoPath {
    pub workdir: PathBuf,
    /// Repository-relative, with `/` separators.
    pub rel: String,
}

pub struct Document {
    pub version: i32,
    pub text: String,
    pub index: LineIndex,
    pub language: Language,
    /// `None` for unsaved buffers and files outside any git repository.
    pub location: Option<RepoPath>,
}

impl Document {
    pub fn new(text: String, version: i32, language: Language, location: Option<RepoPath>) -> Self {
        let index = LineIndex::new(&text);
        Document {
            version,
            text,
            index,
            language,
            location,
        }
    }

    pub fn set_text(&mut self, text: String, version: i32) {
        self.index = LineIndex::new(&text);
        self.text = text;
        self.version = version;
    }
}

/// What the client told us it can do, reduced to what changes our behaviour.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientFeatures {
    pub code_action_resolve: bool,
    pub work_done_progress: bool,
    pub document_changes: bool,
    pub code_lens_refresh: bool,
    pub show_document: bool,
}

#[derive(Default)]
pub struct Session {
    pub encoding: Option<PositionEncoding>,
    pub features: ClientFeatures,
    pub documents: HashMap<Uri, Document>,
}

impl Session {
    pub fn encoding(&self) -> PositionEncoding {
        self.encoding.unwrap_or(PositionEncoding::Utf16)
    }
}

/// A hunk of a finished task, placed in the current text of a document.
#[derive(Debug, Clone)]
pub struct PlacedHunk {
    pub task: TaskId,
    pub hunk: Hunk,
    pub anchor: Anchor,
}

/// One repository: its engine, the last known task records, and the pending hunks
/// of finished tasks (computed from git once, then cached until a decision).
pub struct Repo {
    pub engine: Engine<DockerSandbox>,
    pub tasks: Mutex<BTreeMap<TaskId, Task>>,
    hunks: Mutex<HunkCache>,
}

/// Pending hunks by task and repository-relative path.
type HunkCache = HashMap<(TaskId, String), Arc<Vec<Hunk>>>;

impl Repo {
    pub fn new(engine: Engine<DockerSandbox>) -> Repo {
        let tasks = engine
            .list()
            .unwrap_or_default()
            .into_iter()
            .map(|t| (t.id, t))
            .collect();
        Repo {
            engine,
            tasks: Mutex::new(tasks),
            hunks: Mutex::new(HashMap::new()),
        }
    }

    pub fn workdir(&self) -> &Path {
        self.engine.workdir()
    }

    pub fn task(&self, id: TaskId) -> Option<Task> {
        lock(&self.tasks).get(&id).cloned()
    }

    /// Tasks whose result can be reviewed in `rel`.
    fn reviewable(&self, rel: &str) -> Vec<Task> {
        lock(&self.tasks)
            .values()
            .filter(|t| t.state.is_terminal() && t.head_commit.is_some())
            .filter(|t| t.files_changed.iter().any(|f| f == rel))
            .cloned()
            .collect()
    }

    /// Pending hunks of one task in one file (cached).
    pub fn pending_hunks(&self, task: &Task, rel: &str) -> Arc<Vec<Hunk>> {
        let key = (task.id, rel.to_string());
        if let Some(h) = lock(&self.hunks).get(&key) {
            return h.clone();
        }
        let hunks = match self.engine.pending_hunks(task, rel) {
            Ok(h) => Arc::new(h),
            Err(e) => {
                tracing::warn!(task_id = %task.id, path = rel, error = %e, "cannot compute hunks");
                Arc::new(Vec::new())
            }
        };
        lock(&self.hunks).insert(key, hunks.clone());
        hunks
    }

    pub fn forget_hunks(&self, task: TaskId) {
        lock(&self.hunks).retain(|(t, _), _| *t != task);
    }

    /// Every pending hunk for the document `rel` with current text `text`, placed.
    pub fn placed_hunks(&self, rel: &str, text: &str) -> Vec<PlacedHunk> {
        let mut placed = Vec::new();
        for task in self.reviewable(rel) {
            for hunk in self.pending_hunks(&task, rel).iter() {
                placed.push(PlacedHunk {
                    task: task.id,
                    anchor: reanchor(hunk, text),
                    hunk: hunk.clone(),
                });
            }
        }
        placed
    }
}

/// The line range a placed hunk covers now: `[start, end)`. A conflicting hunk is
/// shown where it was in the base.
pub fn hunk_lines(p: &PlacedHunk) -> (usize, usize) {
    match &p.anchor {
        Anchor::Applies {
            start_line,
            end_line,
        } => (*start_line, *end_line),
        Anchor::Conflict { .. } => (p.hunk.base_start, p.hunk.base_end()),
    }
}
