//! One repository the editor touched: its engine, the last known task records, the
//! pending hunks of finished tasks (computed from git once, then cached until a
//! decision), the hunks whose accept is on its way to the editor, and where each
//! pending hunk stands in each open document (cached per version).
//!
//! A hunk whose accept is in flight is never shown: the editor is applying it, and
//! its `didChange` may come before its answer. A hunk whose proposed lines are
//! already in the buffer has been applied, whichever way they came: it is reported
//! in [`Placement::applied`] for the caller to record, and never shown as a conflict.
//!
//! Locks here are held for short, synchronous sections only, never across an `.await`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::lock;
use crate::diff::{standings, Anchor, Hunk, Standing};
use crate::engine::review::Resolution;
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
    /// The file configures tools, editors, agents or CI: never accepted in bulk.
    pub sensitive: bool,
    /// Pending review comments on the hunk's lines.
    pub comments: Vec<String>,
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

/// Where the pending hunks of one document stand.
#[derive(Debug, Clone, Default)]
pub struct Placement {
    /// The hunks to show, in the current text.
    pub hunks: Arc<Vec<PlacedHunk>>,
    /// Hunks whose proposed lines are in the buffer already: applied, to be recorded.
    pub applied: Vec<(TaskId, usize)>,
}

pub struct Repo<S: Sandbox> {
    engine: Engine<S>,
    tasks: Mutex<BTreeMap<TaskId, Task>>,
    hunks: Mutex<HunkCache>,
    /// Hunks whose accept was sent to the editor and not settled yet, by task and path.
    accepting: Mutex<HashMap<(TaskId, String), BTreeSet<usize>>>,
    placed: Mutex<HashMap<String, Placed>>,
    /// Bumped whenever tasks or pending hunks change, so placements are recomputed.
    generation: AtomicU64,
}

/// Pending hunks by task and repository-relative path.
type HunkCache = HashMap<(TaskId, String), Arc<Vec<Hunk>>>;

/// The placement of one version of a document.
struct Placed {
    version: i32,
    generation: u64,
    placement: Placement,
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
            accepting: Mutex::new(HashMap::new()),
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

    /// Marks hunks as on their way to the editor: they are not shown meanwhile.
    pub fn begin_accept(&self, task: TaskId, rel: &str, hunks: &[usize]) {
        lock(&self.accepting)
            .entry((task, rel.to_string()))
            .or_default()
            .extend(hunks);
        self.invalidate();
    }

    /// The editor answered (or did not in time): the hunks are settled either way.
    pub fn end_accept(&self, task: TaskId, rel: &str, hunks: &[usize]) {
        let mut accepting = lock(&self.accepting);
        let key = (task, rel.to_string());
        if let Some(set) = accepting.get_mut(&key) {
            set.retain(|h| !hunks.contains(h));
            if set.is_empty() {
                accepting.remove(&key);
            }
        }
        drop(accepting);
        self.invalidate();
    }

    /// Whether hunk `index` of `task` in `rel` is on its way to the editor.
    pub fn is_accepting(&self, task: TaskId, rel: &str, index: usize) -> bool {
        lock(&self.accepting)
            .get(&(task, rel.to_string()))
            .is_some_and(|s| s.contains(&index))
    }

    /// Records hunks as accepted (the editor applied them) and takes them out of
    /// review. Recording twice is harmless.
    pub async fn record_accepted(
        &self,
        task: TaskId,
        rel: &str,
        hunks: &[usize],
    ) -> Result<(), LspError> {
        self.engine
            .resolve_hunks(task, rel, hunks, Resolution::Accepted)
            .await?;
        self.drop_hunks(task, rel, hunks);
        self.end_accept(task, rel, hunks);
        Ok(())
    }

    /// Which of `hunks` of `task` in `rel` are still pending review.
    pub fn still_pending(&self, task: TaskId, rel: &str, hunks: &[usize]) -> Vec<usize> {
        let pending = lock(&self.hunks)
            .get(&(task, rel.to_string()))
            .cloned()
            .unwrap_or_default();
        hunks
            .iter()
            .copied()
            .filter(|i| pending.iter().any(|h| h.index == *i))
            .collect()
    }

    /// Where every pending hunk of the document `rel` at `version` with text `text`
    /// stands; the text is split into lines once for all of them.
    pub fn placement(&self, rel: &str, version: i32, text: &str) -> Placement {
        let generation = self.generation.load(Ordering::Relaxed);
        if let Some(p) = lock(&self.placed)
            .get(rel)
            .filter(|p| p.version == version && p.generation == generation)
        {
            return p.placement.clone();
        }
        let mut pending = Vec::new();
        let mut sensitive = std::collections::HashSet::new();
        let mut comments = HashMap::new();
        for task in self.reviewable(rel) {
            let on_file: Vec<_> = self
                .engine
                .pending_comments(task.id)
                .unwrap_or_default()
                .into_iter()
                .filter(|c| c.file == rel)
                .collect();
            comments.insert(task.id, on_file);
            if task.sensitive_files.iter().any(|f| f == rel) {
                sensitive.insert(task.id);
            }
            for hunk in self.pending_hunks(&task, rel).iter() {
                let accepting = self.is_accepting(task.id, rel, hunk.index);
                pending.push((task.id, hunk.clone(), accepting));
            }
        }
        let found = standings(pending.iter().map(|(_, h, a)| (h, *a)), text);
        let mut placement = Placement::default();
        let mut shown = Vec::new();
        for ((task, hunk, accepting), standing) in pending.into_iter().zip(found) {
            let anchor = match standing {
                Standing::Applied { .. } => {
                    placement.applied.push((task, hunk.index));
                    continue;
                }
                // On its way: neither accept it again nor call it a conflict.
                _ if accepting => continue,
                Standing::Pending {
                    start_line,
                    end_line,
                } => Anchor::Applies {
                    start_line,
                    end_line,
                },
                Standing::Conflict(reason) => Anchor::Conflict { reason },
            };
            let sensitive = sensitive.contains(&task);
            // Comments name lines of the task's result, 1-based; the hunk's own lines
            // there are `result_start..` (at least one line, for a deletion).
            let (first, last) = (
                hunk.result_start as u32 + 1,
                (hunk.result_start + hunk.new_lines.len().max(1)) as u32,
            );
            let comments = comments
                .get(&task)
                .into_iter()
                .flatten()
                .filter(|c| c.line <= last && c.end_line >= first)
                .map(|c| c.text.clone())
                .collect();
            shown.push(PlacedHunk {
                task,
                hunk,
                anchor,
                sensitive,
                comments,
            });
        }
        placement.hunks = Arc::new(shown);
        lock(&self.placed).insert(
            rel.to_string(),
            Placed {
                version,
                generation,
                placement: placement.clone(),
            },
        );
        placement
    }
}
