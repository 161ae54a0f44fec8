//! One repository the editor touched: its engine, the last known task records, the
//! pending hunks of finished tasks (computed from git once, then cached until a
//! decision), and where they sit in each open document (cached per version).
//!
//! Locks here are held for short, synchronous sections only, never across an `.await`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::lock;
use crate::diff::{reanchor_many, Anchor, Hunk};
use crate::engine::task::{Task, TaskId};
use crate::engine::Engine;
use crate::lsp::error::LspError;
use crate::sandbox::Sandbox;

/// A hunk of a finished task, placed in the current text of a document.
#[derive(Debug, Clone)]
pub struct PlacedHunk {
    pub task: TaskId,
    pub hunk: Hunk,
    pub anchor: Anchor,
}

impl PlacedHunk {
    /// The line range the hunk covers now: `[start, end)`. A conflicting hunk is
    /// shown where it was in the base.
    pub fn lines(&self) -> (usize, usize) {
        match &self.anchor {
            Anchor::Applies {
                start_line,
                end_line,
            } => (*start_line, *end_line),
            Anchor::Conflict { .. } => (self.hunk.base_start, self.hunk.base_end()),
        }
    }

    pub fn is_conflict(&self) -> bool {
        matches!(self.anchor, Anchor::Conflict { .. })
    }

    /// Whether the hunk covers one of the lines `first..=last` (a pure insertion
    /// covers the line where it goes).
    pub fn touches(&self, first: usize, last: usize) -> bool {
        let (start, end) = self.lines();
        first <= end.max(start + 1).saturating_sub(1) && last >= start
    }
}

pub struct Repo<S: Sandbox> {
    engine: Engine<S>,
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

    pub fn engine(&self) -> &Engine<S> {
        &self.engine
    }

    pub fn workdir(&self) -> &Path {
        self.engine.workdir()
    }

    /// The repository's working tree, as clients name it.
    pub fn name(&self) -> String {
        self.workdir().display().to_string()
    }

    /// The record of a task as the server last saw it.
    pub fn known(&self, id: TaskId) -> Option<Task> {
        lock(&self.tasks).get(&id).cloned()
    }

    /// The last known record of a task (from disk if the server has not seen it yet).
    pub fn task(&self, id: TaskId) -> Result<Task, LspError> {
        match self.known(id) {
            Some(task) => Ok(task),
            None => Ok(self.engine.get(id)?),
        }
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

    /// Every pending hunk for the document `rel` at `version` with text `text`,
    /// placed; the text is split into lines once for all of them.
    pub fn placed_hunks(&self, rel: &str, version: i32, text: &str) -> Arc<Vec<PlacedHunk>> {
        let generation = self.generation.load(Ordering::Relaxed);
        if let Some(p) = lock(&self.placed)
            .get(rel)
            .filter(|p| p.version == version && p.generation == generation)
        {
            return p.hunks.clone();
        }
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
