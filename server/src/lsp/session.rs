//! The server's state: open documents with their versions, the negotiated position
//! encoding and client features, and one engine per repository the editor touched.
//!
//! Locks here are `std::sync::Mutex` held for short, synchronous sections only, never
//! across an `.await`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tower_lsp_server::ls_types::Uri;

use crate::context::Language;
use crate::diff::{reanchor_many, Anchor, Hunk, LineIndex, PositionEncoding};
use crate::engine::task::{Task, TaskId};
use crate::engine::Engine;
use crate::sandbox::Sandbox;

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
    /// `initializationOptions.taskMessages` (default true): a `window/showMessage`
    /// when a task ends. Editor extensions with their own notifications turn it off.
    pub task_messages: bool,
    /// `initializationOptions.errorMessages` (default true): failed commands are also
    /// shown with `window/showMessage`, not only returned as errors.
    pub error_messages: bool,
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

/// One repository: its engine, the last known task records, the pending hunks of
/// finished tasks (computed from git once, then cached until a decision), and where
/// they sit in each open document (cached per document version).
pub struct Repo<S: Sandbox> {
    pub engine: Engine<S>,
    tasks: Mutex<BTreeMap<TaskId, Task>>,
    hunks: Mutex<HunkCache>,
    placed: Mutex<HashMap<String, Placed>>,
    /// Bumped whenever tasks or pending hunks change, so placements are recomputed.
    generation: AtomicU64,
}

/// Pending hunks by task and repository-relative path.
type HunkCache = HashMap<(TaskId, String), Arc<Vec<Hunk>>>;

/// The hunks placed in one version of a document.
struct Placed {
    version: i32,
    generation: u64,
    hunks: Arc<Vec<PlacedHunk>>,
}

impl<S: Sandbox> Repo<S> {
    pub fn new(engine: Engine<S>) -> Repo<S> {
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
            placed: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
        }
    }

    pub fn workdir(&self) -> &Path {
        self.engine.workdir()
    }

    pub fn task(&self, id: TaskId) -> Option<Task> {
        lock(&self.tasks).get(&id).cloned()
    }

    pub fn tasks(&self) -> Vec<Task> {
        lock(&self.tasks).values().cloned().collect()
    }

    /// Records a task's latest state; returns the one it replaces.
    pub fn set_task(&self, task: Task) -> Option<Task> {
        let previous = lock(&self.tasks).insert(task.id, task);
        self.invalidate();
        previous
    }

    /// Forgets a removed task and its hunks; returns it if it was known.
    pub fn remove_task(&self, id: TaskId) -> Option<Task> {
        let removed = lock(&self.tasks).remove(&id);
        self.forget_hunks(id);
        removed
    }

    /// Forgets every placement (a document was reopened, tasks changed).
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::Relaxed);
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

    /// Takes decided hunks out of review without recomputing the rest.
    pub fn drop_hunks(&self, task: TaskId, rel: &str, decided: &[usize]) {
        if let Some(h) = lock(&self.hunks).get_mut(&(task, rel.to_string())) {
            *h = Arc::new(
                h.iter()
                    .filter(|h| !decided.contains(&h.index))
                    .cloned()
                    .collect(),
            );
        }
        self.invalidate();
    }

    pub fn forget_hunks(&self, task: TaskId) {
        lock(&self.hunks).retain(|(t, _), _| *t != task);
        self.invalidate();
    }

    /// The placements for version `version` of `rel`, if still valid.
    pub fn cached_placement(&self, rel: &str, version: i32) -> Option<Arc<Vec<PlacedHunk>>> {
        let generation = self.generation.load(Ordering::Relaxed);
        lock(&self.placed)
            .get(rel)
            .filter(|p| p.version == version && p.generation == generation)
            .map(|p| p.hunks.clone())
    }

    /// Every pending hunk for the document `rel` at `version` with text `text`,
    /// placed; the text is split into lines once for all of them.
    pub fn placed_hunks(&self, rel: &str, version: i32, text: &str) -> Arc<Vec<PlacedHunk>> {
        if let Some(cached) = self.cached_placement(rel, version) {
            return cached;
        }
        let generation = self.generation.load(Ordering::Relaxed);
        let mut pending = Vec::new();
        for task in self.reviewable(rel) {
            for hunk in self.pending_hunks(&task, rel).iter() {
                pending.push((task.id, hunk.clone()));
            }
        }
        let anchors = reanchor_many(pending.iter().map(|(_, h)| h), text);
        let placed: Arc<Vec<PlacedHunk>> = Arc::new(
            pending
                .into_iter()
                .zip(anchors)
                .map(|((task, hunk), anchor)| PlacedHunk { task, hunk, anchor })
                .collect(),
        );
        lock(&self.placed).insert(
            rel.to_string(),
            Placed {
                version,
                generation,
                hunks: placed.clone(),
            },
        );
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
