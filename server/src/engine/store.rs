//! Task records on disk, under `<git-dir>/handoff/`.
//!
//! Layout:
//! ```text
//! handoff/lock                 advisory lock serialising front-ends (flock)
//! handoff/next-id              the next task number
//! handoff/tasks/<id>/task.json the record, replaced atomically
//! handoff/tasks/<id>/log       the agent's output (secrets redacted)
//! handoff/tasks/<id>/prompt.txt
//! handoff/tasks/<id>/layer     the turn's start layer (what differs from the base)
//! handoff/tasks/<id>/upper     what the agent wrote under /workspace (overlay upper)
//! handoff/tasks/<id>/work      overlayfs's scratch folder
//! handoff/tasks/<id>/home      the agent's HOME, kept across turns (its sessions)
//! handoff/tasks/<id>/out       what the runner reports (setup and check results)
//! handoff/bases/<commit>-u<uid> shared base checkouts, the workspaces' lowest layer
//! handoff/tasks/<id>/log.<n>   the output of ended turn n (1-based) once a
//!                              follow-up started; `log` is the current turn's
//! handoff/task-index           a summary of every record, so that lists and the
//!                              scheduler need not read them all (see `index`)
//! ```
//! Every record write is write-to-temp, fsync, rename, so a reader never sees half a
//! record and a crash leaves either the old or the new one.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::index::{self, Entry, Index, Stamp, TaskSummary};
use super::task::{Task, TaskId};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("task record {path} is damaged; move it away (the task's branch stays)")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("no task #{0} in this repository; see `handoff list`")]
    NotFound(TaskId),
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `bytes` to `path` atomically and durably: temp file in the same folder,
/// fsync, rename. For task records and everything that must survive a crash.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    replace(path, bytes, true)
}

/// Writes `bytes` to `path` atomically but without waiting for the disk: a reader
/// sees the old or the new content, and a power cut may bring the old one back. For
/// files that are cheap to lose and written on an interactive path (review
/// decisions, files shown in the editor), where an fsync costs tens of milliseconds.
pub fn write_atomic_unsynced(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    replace(path, bytes, false)
}

fn replace(path: &Path, bytes: &[u8], sync: bool) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io_err("create a file in", dir))?;
    tmp.write_all(bytes).map_err(io_err("write", path))?;
    if sync {
        tmp.as_file().sync_all().map_err(io_err("sync", path))?;
    }
    tmp.persist(path)
        .map_err(|e| e.error)
        .map_err(io_err("replace", path))?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    /// The task index as this process last read it, with its file's stamp.
    index_memo: Memo<Arc<Index>>,
    /// The task ids as this process last listed them, with the stamp of `tasks/`.
    ids_memo: Memo<Vec<TaskId>>,
}

/// What this process last read of a file or folder, with the stamp it had then.
type Memo<T> = Arc<Mutex<Option<(Stamp, T)>>>;

/// Held while a front-end reconciles, schedules or finalizes. Dropping it (or the
/// process dying, even by `kill -9`) releases it.
pub struct StoreLock {
    _file: File,
}

impl Store {
    /// `git_dir` is the repository's common git directory.
    pub fn open(git_dir: &Path) -> Result<Store, StoreError> {
        let root = git_dir.join("handoff");
        let tasks = root.join("tasks");
        fs::create_dir_all(&tasks).map_err(io_err("create", &tasks))?;
        Ok(Store {
            root,
            index_memo: Default::default(),
            ids_memo: Default::default(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn task_dir(&self, id: TaskId) -> PathBuf {
        self.root.join("tasks").join(id.to_string())
    }

    pub fn log_path(&self, id: TaskId) -> PathBuf {
        self.task_dir(id).join("log")
    }

    /// The output of ended turn `n` (1-based), kept when a follow-up starts.
    pub fn turn_log_path(&self, id: TaskId, n: usize) -> PathBuf {
        self.task_dir(id).join(format!("log.{n}"))
    }

    /// The agent's HOME folder, which survives between turns.
    pub fn home_path(&self, id: TaskId) -> PathBuf {
        self.task_dir(id).join("home")
    }

    pub fn prompt_path(&self, id: TaskId) -> PathBuf {
        self.task_dir(id).join("prompt.txt")
    }

    /// The folder that holds everything the agent wrote under /workspace.
    pub fn upper_path(&self, id: TaskId) -> PathBuf {
        self.task_dir(id).join("upper")
    }

    pub fn work_path(&self, id: TaskId) -> PathBuf {
        self.task_dir(id).join("work")
    }

    pub fn layer_path(&self, id: TaskId) -> PathBuf {
        self.task_dir(id).join("layer")
    }

    pub fn out_path(&self, id: TaskId) -> PathBuf {
        self.task_dir(id).join("out")
    }

    /// Scratch space of an import (the quarantine repository).
    pub fn quarantine_path(&self, id: TaskId) -> PathBuf {
        self.task_dir(id).join("quarantine")
    }

    pub fn bases_path(&self) -> PathBuf {
        self.root.join("bases")
    }

    fn record_path(&self, id: TaskId) -> PathBuf {
        self.task_dir(id).join("task.json")
    }

    /// Blocks until this process holds the repository's handoff lock.
    pub fn lock(&self) -> Result<StoreLock, StoreError> {
        let path = self.root.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err("open", &path))?;
        file.lock().map_err(io_err("lock", &path))?;
        Ok(StoreLock { _file: file })
    }

    /// The repository's handoff lock if no one holds it now (in this process too).
    fn try_lock(&self) -> Option<StoreLock> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.root.join("lock"))
            .ok()?;
        file.try_lock().ok()?;
        Some(StoreLock { _file: file })
    }

    /// Reserves the next task number. Call with the lock held.
    pub fn allocate_id(&self, _lock: &StoreLock) -> Result<TaskId, StoreError> {
        let path = self.root.join("next-id");
        let stored = match fs::read_to_string(&path) {
            Ok(s) => s.trim().parse::<u64>().unwrap_or(1),
            Err(e) if e.kind() == io::ErrorKind::NotFound => 1,
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        // Never reuse a number whose folder exists, even if next-id was lost.
        let highest = self.ids()?.into_iter().map(|id| id.0).max().unwrap_or(0);
        let id = stored.max(highest + 1);
        write_atomic(&path, format!("{}\n", id + 1).as_bytes())?;
        let dir = self.task_dir(TaskId(id));
        fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        Ok(TaskId(id))
    }

    /// Replaces the task's record. Call with the lock held (every front-end does), so
    /// that the task index is kept in step: the task is marked in it first (a crash
    /// before the record is written leaves it to be read, never stale), then the new
    /// entry is added.
    pub fn save(&self, task: &Task) -> Result<(), StoreError> {
        let dir = self.task_dir(task.id);
        fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        let mut bytes = serde_json::to_vec_pretty(task).map_err(|source| StoreError::Corrupt {
            path: self.record_path(task.id),
            source,
        })?;
        bytes.push(b'\n');
        let path = self.record_path(task.id);
        self.index_append(&index::marked_line(task.id));
        write_atomic(&path, &bytes)?;
        // Without its stamp the mark stays, and readers read the record.
        if let Ok(meta) = fs::symlink_metadata(&path) {
            self.index_append(&index::entry_line(&Entry(
                Stamp::of(&meta),
                TaskSummary::of(task),
            )));
        }
        if index::wants_rebuild(&self.index_path()) {
            self.rebuild_index(HashMap::new());
        }
        Ok(())
    }

    fn index_path(&self) -> PathBuf {
        self.root.join(index::FILE)
    }

    /// Appends to the index; if that fails, removes the index (the next listing
    /// rebuilds it), since one that missed a change must not be read.
    fn index_append(&self, lines: &str) {
        let path = self.index_path();
        if let Err(e) = index::append(&path, lines) {
            tracing::warn!(error = %e, path = %path.display(), "cannot update the task index; it will be rebuilt");
            let _ = fs::remove_file(&path);
        }
    }

    /// The index, from this process's last reading while its file has not changed.
    fn index(&self) -> Option<Arc<Index>> {
        let path = self.index_path();
        let meta = fs::metadata(&path).ok()?;
        let stamp = Stamp::of(&meta);
        let mut memo = self.index_memo.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((s, index)) = memo.as_ref() {
            if *s == stamp {
                return Some(index.clone());
            }
        }
        let now = std::time::SystemTime::now();
        // Read after the stamp: the content is at least as new as the stamp says.
        let index = Arc::new(index::read(&path)?);
        if index::settled(&meta, now) {
            *memo = Some((stamp, index.clone()));
        }
        Some(index)
    }

    /// The record of `id` with the stamp of the very file read.
    fn read_record(&self, id: TaskId) -> Result<(Stamp, Task), StoreError> {
        let path = self.record_path(id);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(StoreError::NotFound(id)),
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        let meta = file.metadata().map_err(io_err("read", &path))?;
        let mut bytes = Vec::with_capacity(meta.len() as usize + 1);
        file.read_to_end(&mut bytes)
            .map_err(io_err("read", &path))?;
        let task = serde_json::from_slice(&bytes)
            .map_err(|source| StoreError::Corrupt { path, source })?;
        Ok((Stamp::of(&meta), task))
    }

    /// Rewrites the index from the records: a known entry (from the index, or
    /// `fresh` from a reading just made) is kept while its stamp is still its
    /// record's; the other records are read. Call with the lock held.
    fn rebuild_index(&self, mut fresh: HashMap<TaskId, Entry>) {
        let Ok(ids) = self.ids() else { return };
        let Some(records) = RecordStamps::open(&self.root.join("tasks")) else {
            return;
        };
        let known = self.index();
        let mut entries = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(now) = records.stamp(id) else {
                continue;
            };
            let cached = fresh.remove(&id).filter(|e| e.0 == now).or_else(|| {
                let e = known.as_ref()?.entries.get(&id)?.as_ref()?;
                (e.0 == now).then(|| e.clone())
            });
            match cached {
                Some(e) => entries.push(e),
                None => {
                    if let Ok((stamp, task)) = self.read_record(id) {
                        entries.push(Entry(stamp, TaskSummary::of(&task)));
                    }
                }
            }
        }
        if let Err(e) = write_atomic_unsynced(&self.index_path(), &index::render(&entries)) {
            tracing::warn!(error = %e, "cannot write the task index");
        }
    }

    /// Every readable task as lists show it, ascending by id: from the index where
    /// its entry's stamp is still the record's, else from the record (and the index
    /// is healed when the lock is free). Like [`Store::scan`], also the records that
    /// cannot be read, with why.
    #[allow(clippy::type_complexity)]
    pub fn summaries(&self) -> Result<(Vec<TaskSummary>, Vec<(TaskId, StoreError)>), StoreError> {
        let ids = self.ids()?;
        let index = self.index();
        let stamps = match (&index, RecordStamps::open(&self.root.join("tasks"))) {
            (Some(_), Some(records)) => records.stamps(&ids),
            _ => vec![None; ids.len()],
        };
        let mut out = Vec::with_capacity(ids.len());
        let mut damaged = Vec::new();
        let mut fresh = HashMap::new();
        for (id, now) in ids.into_iter().zip(stamps) {
            let cached = index
                .as_ref()
                .and_then(|i| i.entries.get(&id))
                .and_then(Option::as_ref);
            if let Some(Entry(stamp, summary)) = cached {
                match now {
                    Some(now) if now == *stamp => {
                        out.push(summary.clone());
                        continue;
                    }
                    // A folder without a record: a task being created.
                    None => continue,
                    Some(_) => {}
                }
            }
            match self.read_record(id) {
                Ok((stamp, task)) => {
                    let summary = TaskSummary::of(&task);
                    out.push(summary.clone());
                    fresh.insert(id, Entry(stamp, summary));
                }
                // A folder without a record: a task being created.
                Err(StoreError::NotFound(_)) => {}
                Err(e) => damaged.push((id, e)),
            }
        }
        if !fresh.is_empty() || index.is_none() {
            self.heal_index(index.as_deref(), fresh);
        }
        Ok((out, damaged))
    }

    /// Brings entries read from records into the index, if the lock can be had now:
    /// appended when they are few, the index rewritten when they are many or there
    /// is none. Each is checked again under the lock: a record replaced since it was
    /// read is left for the next reading.
    fn heal_index(&self, index: Option<&Index>, fresh: HashMap<TaskId, Entry>) {
        let Some(_lock) = self.try_lock() else { return };
        let many = match index {
            Some(i) => fresh.len() * 8 > i.entries.len().max(64),
            None => true,
        };
        if many {
            return self.rebuild_index(fresh);
        }
        let Some(records) = RecordStamps::open(&self.root.join("tasks")) else {
            return;
        };
        let mut fresh: Vec<Entry> = fresh.into_values().collect();
        fresh.sort_by_key(|e| e.1.id);
        let lines: String = fresh
            .iter()
            .filter(|e| records.stamp(e.1.id) == Some(e.0))
            .map(index::entry_line)
            .collect();
        if !lines.is_empty() {
            self.index_append(&lines);
        }
    }

    /// The records of the tasks that have not ended (queued, starting, running,
    /// finalizing), ascending by id: what the scheduler starts from.
    pub fn unfinished(&self) -> Result<Vec<Task>, StoreError> {
        self.scheduled(false)
    }

    /// [`Store::unfinished`], and the ended tasks that still hold a turn's scratch
    /// folder (their front-end died before releasing the turn): what the scheduler
    /// settles.
    pub fn unsettled(&self) -> Result<Vec<Task>, StoreError> {
        self.scheduled(true)
    }

    /// The index says which tasks have ended, while its entry's stamp is still the
    /// record's; every other record (unended, marked, replaced since, or not in the
    /// index) is read, so a record replaced by something that does not keep the index
    /// (an older Handoff, a hand edit) is seen at once. With `unreleased`, an ended
    /// task's folder is also looked at for a scratch folder.
    fn scheduled(&self, unreleased: bool) -> Result<Vec<Task>, StoreError> {
        let ids = self.ids()?;
        let index = self.index();
        let records = RecordStamps::open(&self.root.join("tasks"));
        let stamps = match (&index, &records) {
            (Some(_), Some(records)) => records.stamps(&ids),
            _ => vec![None; ids.len()],
        };
        let left = |id: TaskId| unreleased && self.has_scratch(id);
        let mut out = Vec::new();
        for (id, now) in ids.into_iter().zip(stamps) {
            let ended = index
                .as_ref()
                .and_then(|i| i.entries.get(&id))
                .and_then(Option::as_ref)
                .is_some_and(|e| e.1.state.is_terminal() && Some(e.0) == now);
            if ended && !left(id) {
                continue;
            }
            match self.load(id) {
                Ok(t) if !t.state.is_terminal() || left(id) => out.push(t),
                // Ended (and released), being created, or damaged (which `list` skips
                // too).
                _ => {}
            }
        }
        Ok(out)
    }

    pub fn load(&self, id: TaskId) -> Result<Task, StoreError> {
        let path = self.record_path(id);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(StoreError::NotFound(id)),
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        serde_json::from_slice(&bytes).map_err(|source| StoreError::Corrupt { path, source })
    }

    /// Ids of all tasks with a folder, ascending. Listed again only when `tasks/`
    /// has changed since this process last listed it.
    pub fn ids(&self) -> Result<Vec<TaskId>, StoreError> {
        let dir = self.root.join("tasks");
        let meta = fs::metadata(&dir).map_err(io_err("list", &dir))?;
        let stamp = Stamp::of(&meta);
        let mut memo = self.ids_memo.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((s, ids)) = memo.as_ref() {
            if *s == stamp {
                return Ok(ids.clone());
            }
        }
        let now = std::time::SystemTime::now();
        let mut ids: Vec<TaskId> = fs::read_dir(&dir)
            .map_err(io_err("list", &dir))?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str()?.parse::<u64>().ok())
            .map(TaskId)
            .collect();
        ids.sort();
        if index::settled(&meta, now) {
            *memo = Some((stamp, ids.clone()));
        }
        Ok(ids)
    }

    /// All readable task records, ascending by id. A folder without a record (a task
    /// being created right now) is skipped; so is a damaged record, which never
    /// keeps the other tasks from being listed or run (see [`Store::damaged`]).
    pub fn list(&self) -> Result<Vec<Task>, StoreError> {
        Ok(self.scan()?.0)
    }

    /// The records that cannot be read, with why.
    pub fn damaged(&self) -> Result<Vec<(TaskId, StoreError)>, StoreError> {
        Ok(self.scan()?.1)
    }

    /// [`Store::list`] and [`Store::damaged`] in one pass over the records.
    #[allow(clippy::type_complexity)]
    pub fn scan(&self) -> Result<(Vec<Task>, Vec<(TaskId, StoreError)>), StoreError> {
        let mut tasks = Vec::new();
        let mut damaged = Vec::new();
        for id in self.ids()? {
            match self.load(id) {
                Ok(t) => tasks.push(t),
                Err(StoreError::NotFound(_)) => {}
                Err(e) => damaged.push((id, e)),
            }
        }
        Ok((tasks, damaged))
    }

    /// Takes the task's folder out of the store at once (a rename into `trash/`),
    /// so that the slow removal of what it holds can run without the lock. Returns
    /// where it went; `None` if there was no folder.
    pub fn detach(&self, id: TaskId) -> Result<Option<PathBuf>, StoreError> {
        self.to_trash(&self.task_dir(id), &id.to_string())
    }

    /// Moves `path` into `trash/` (named after `label`, this process and the time),
    /// for [`Store::empty_trash`] to delete. `None` if there was nothing.
    fn to_trash(&self, path: &Path, label: &str) -> Result<Option<PathBuf>, StoreError> {
        let trash = self.root.join("trash");
        fs::create_dir_all(&trash).map_err(io_err("create", &trash))?;
        let to = trash.join(format!(
            "{label}-{}-{}",
            std::process::id(),
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
        ));
        match fs::rename(path, &to) {
            Ok(()) => Ok(Some(to)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("move away", path)(e)),
        }
    }

    /// Whether the task still holds a turn's overlay scratch folder: it is running a
    /// turn, or an ended turn was never released (its front-end died after saving the
    /// outcome).
    pub fn has_scratch(&self, id: TaskId) -> bool {
        self.work_path(id).exists()
    }

    /// Whether the task's upper folder holds anything: an agent of the current turn
    /// wrote (the folder is made empty before its container starts).
    pub fn has_agent_writes(&self, id: TaskId) -> bool {
        fs::read_dir(self.upper_path(id)).is_ok_and(|mut entries| entries.next().is_some())
    }

    /// Like [`Store::remove_scratch`] (and the runner's reports too), but only moves the
    /// folders into `trash/`, at once: safe under the lock, however much the agent
    /// wrote. [`Store::empty_trash`] deletes them.
    pub fn discard_scratch(&self, id: TaskId, with_upper: bool) -> Result<(), StoreError> {
        let mut dirs = vec![
            ("layer", self.layer_path(id)),
            ("out", self.out_path(id)),
            ("quarantine", self.quarantine_path(id)),
            ("workspace", self.task_dir(id).join("workspace")),
        ];
        if with_upper {
            dirs.push(("upper", self.upper_path(id)));
        }
        // The overlay scratch folder last: while it is there, the release is unfinished.
        dirs.push(("work", self.work_path(id)));
        for (name, dir) in dirs {
            self.to_trash(&dir, &format!("{id}-{name}"))?;
        }
        Ok(())
    }

    /// Removes whatever earlier removals left in `trash/` (a front-end may have died
    /// half-way through one). Call without the lock.
    pub fn empty_trash(&self) {
        let trash = self.root.join("trash");
        if let Ok(entries) = fs::read_dir(&trash) {
            for entry in entries.flatten() {
                let _ = crate::untrusted::remove_tree(&entry.path());
            }
        }
    }

    /// Removes the turn's scratch folders (start layer, overlay folders, quarantine),
    /// keeping the record, logs, HOME and — unless `with_upper` — the agent's writes.
    pub fn remove_scratch(&self, id: TaskId, with_upper: bool) -> Result<(), StoreError> {
        let mut dirs = vec![
            self.layer_path(id),
            self.work_path(id),
            self.quarantine_path(id),
            // The workspace of tasks from before overlays.
            self.task_dir(id).join("workspace"),
        ];
        if with_upper {
            dirs.push(self.upper_path(id));
        }
        for dir in dirs {
            crate::untrusted::remove_tree(&dir).map_err(io_err("remove", &dir))?;
        }
        Ok(())
    }
}

/// Stamps of record files, by task, through one open handle on `tasks/` (a lookup
/// of two path components each, not of the whole path).
struct RecordStamps {
    dir: rustix::fd::OwnedFd,
}

impl RecordStamps {
    fn open(tasks: &Path) -> Option<RecordStamps> {
        use rustix::fs::{Mode, OFlags};
        let dir = rustix::fs::open(
            tasks,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ok()?;
        Some(RecordStamps { dir })
    }

    /// The stamp of task `id`'s record; `None` if it has none.
    fn stamp(&self, id: TaskId) -> Option<Stamp> {
        let st = rustix::fs::statat(
            &self.dir,
            format!("{id}/task.json"),
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .ok()?;
        Some(Stamp::of_stat(&st))
    }

    /// The stamps of the records of `ids`, in order; on several threads when there
    /// are thousands (each is a system call, and they add up).
    fn stamps(&self, ids: &[TaskId]) -> Vec<Option<Stamp>> {
        const PER_THREAD: usize = 2048;
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(4)
            .min(ids.len().div_ceil(PER_THREAD));
        if threads <= 1 {
            return ids.iter().map(|&id| self.stamp(id)).collect();
        }
        let chunk = ids.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let parts: Vec<_> = ids
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || part.iter().map(|&id| self.stamp(id)).collect::<Vec<_>>())
                })
                .collect();
            parts
                .into_iter()
                .flat_map(|p| p.join().unwrap_or_default())
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::task::TaskState;
    use chrono::Utc;

    fn task(id: u64) -> Task {
        Task {
            id: TaskId(id),
            state: TaskState::Queued,
            agent: "shell".into(),
            prompt: "true".into(),
            title: "true".into(),
            branch: format!("handoff/{id}-true"),
            base_commit: "0".repeat(40),
            head_commit: None,
            files_changed: vec![],
            error: None,
            image: "img".into(),
            image_id: None,
            container_id: None,
            exit_code: None,
            oom_killed: false,
            cancel_requested: false,
            env_names: vec![],
            origin: None,
            phases_ms: Default::default(),
            created_at: Utc::now(),
            started_at: None,
            finished_at: None,
            turns: vec![],
            reply: None,
            pending_replies: vec![],
            session_id: None,
            check: None,
            check_repairs: 0,
            workspace_base: None,
            claim: None,
            not_imported: vec![],
            sensitive_files: vec![],
            warnings: vec![],
            blocked: vec![],
            stopped_for: None,
            phase: None,
            spent: Default::default(),
            group: None,
            lines_added: 0,
            lines_removed: 0,
            environment: None,
            warm: false,
        }
    }

    #[test]
    fn ids_are_never_reused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let lock = store.lock().unwrap();
        let a = store.allocate_id(&lock).unwrap();
        let b = store.allocate_id(&lock).unwrap();
        assert_eq!((a, b), (TaskId(1), TaskId(2)));
        fs::remove_file(store.root().join("next-id")).unwrap();
        assert_eq!(store.allocate_id(&lock).unwrap(), TaskId(3));
    }

    #[test]
    fn records_round_trip_and_list_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for id in [3, 1, 2] {
            store.save(&task(id)).unwrap();
        }
        let ids: Vec<u64> = store.list().unwrap().iter().map(|t| t.id.0).collect();
        assert_eq!(ids, vec![1, 2, 3]);
        assert_eq!(store.load(TaskId(2)).unwrap(), task_with_time(&store, 2));
        assert!(matches!(
            store.load(TaskId(9)),
            Err(StoreError::NotFound(TaskId(9)))
        ));
    }

    fn task_with_time(store: &Store, id: u64) -> Task {
        let mut t = task(id);
        t.created_at = store.load(TaskId(id)).unwrap().created_at;
        t
    }

    fn states(summaries: &[TaskSummary]) -> Vec<(u64, TaskState)> {
        summaries.iter().map(|s| (s.id.0, s.state)).collect()
    }

    fn listed(store: &Store) -> Vec<TaskSummary> {
        let (summaries, damaged) = store.summaries().unwrap();
        assert!(damaged.is_empty(), "{damaged:?}");
        summaries
    }

    fn unfinished(store: &Store) -> Vec<u64> {
        store.unfinished().unwrap().iter().map(|t| t.id.0).collect()
    }

    fn ended(id: u64) -> Task {
        let mut t = task(id);
        t.state = TaskState::Done;
        t
    }

    /// Replaces a record the way a Handoff that does not know the index would.
    fn write_behind_the_index(store: &Store, t: &Task) {
        let bytes = serde_json::to_vec_pretty(t).unwrap();
        write_atomic(&store.record_path(t.id), &bytes).unwrap();
    }

    #[test]
    fn saves_keep_the_index_in_step_with_the_records() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for id in 1..=3 {
            store.save(&ended(id)).unwrap();
        }
        store.save(&task(2)).unwrap();
        let index = index::read(&store.index_path()).unwrap();
        assert_eq!(index.entries.len(), 3);
        let want = vec![
            (1, TaskState::Done),
            (2, TaskState::Queued),
            (3, TaskState::Done),
        ];
        assert_eq!(states(&listed(&store)), want);
        let full: Vec<TaskSummary> = store.list().unwrap().iter().map(TaskSummary::of).collect();
        assert_eq!(listed(&store), full);
        assert_eq!(unfinished(&store), [2]);
    }

    #[test]
    fn a_record_replaced_behind_the_index_is_listed_as_it_is_and_the_index_healed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for id in 1..=3 {
            store.save(&ended(id)).unwrap();
        }
        let mut replied = task(2);
        replied.title = "replied to by an older handoff".into();
        write_behind_the_index(&store, &replied);
        // The scheduler sees it at once, before any listing healed the index.
        assert_eq!(unfinished(&store), [2]);
        let listed = listed(&store);
        assert_eq!(listed[1].state, TaskState::Queued);
        assert_eq!(listed[1].title, "replied to by an older handoff");
        // Healed: the index now says so too, and the scheduler sees the task.
        let index = index::read(&store.index_path()).unwrap();
        assert_eq!(
            index.entries[&TaskId(2)].as_ref().unwrap().1.state,
            TaskState::Queued
        );
        assert_eq!(unfinished(&store), [2]);
    }

    #[test]
    fn a_task_marked_but_never_saved_is_read_from_its_record() {
        // A crash between the mark and the new entry: the index must not be believed.
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.save(&ended(1)).unwrap();
        index::append(&store.index_path(), &index::marked_line(TaskId(1))).unwrap();
        write_behind_the_index(&store, &task(1));
        assert_eq!(unfinished(&store), [1]);
        assert_eq!(states(&listed(&store)), [(1, TaskState::Queued)]);
    }

    #[test]
    fn the_folders_say_which_tasks_exist_whatever_the_index_says() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for id in 1..=3 {
            store.save(&ended(id)).unwrap();
        }
        // Removed: gone from lists at once.
        store.detach(TaskId(2)).unwrap();
        // Made by something that does not know the index: listed, and scheduled.
        fs::create_dir_all(store.task_dir(TaskId(4))).unwrap();
        write_behind_the_index(&store, &task(4));
        // Being created (a folder, no record yet): not listed.
        fs::create_dir_all(store.task_dir(TaskId(5))).unwrap();
        assert_eq!(
            states(&listed(&store)),
            [
                (1, TaskState::Done),
                (3, TaskState::Done),
                (4, TaskState::Queued)
            ]
        );
        assert_eq!(unfinished(&store), [4]);
    }

    #[test]
    fn without_a_trusted_index_everything_is_read_and_the_next_save_rebuilds_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for id in 1..=3 {
            store.save(&ended(id)).unwrap();
        }
        // An index from another boot (appends there were never synced).
        let path = store.index_path();
        let text = fs::read_to_string(&path).unwrap();
        let boot = crate::engine::claim::boot_id();
        fs::write(&path, text.replace(&boot, "another-boot")).unwrap();
        write_behind_the_index(&store, &task(3));
        assert_eq!(unfinished(&store), [3]);
        store.save(&ended(1)).unwrap();
        let index = index::read(&path).expect("rebuilt for this boot");
        assert_eq!(index.entries.len(), 3);
        assert_eq!(
            index.entries[&TaskId(3)].as_ref().unwrap().1.state,
            TaskState::Queued
        );
    }

    #[test]
    fn discarded_scratch_goes_to_the_trash_keeping_the_upper_folder_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let id = TaskId(7);
        for d in [
            store.layer_path(id),
            store.upper_path(id),
            store.work_path(id),
            store.out_path(id),
            store.home_path(id),
        ] {
            fs::create_dir_all(d.join("sub")).unwrap();
        }
        assert!(store.has_scratch(id));
        assert!(store.has_agent_writes(id));
        store.discard_scratch(id, false).unwrap();
        assert!(!store.has_scratch(id));
        assert!(!store.layer_path(id).exists() && !store.out_path(id).exists());
        assert!(
            store.upper_path(id).join("sub").exists(),
            "the work is kept"
        );
        assert!(store.home_path(id).exists(), "HOME is not scratch");
        store.discard_scratch(id, true).unwrap();
        assert!(!store.upper_path(id).exists());
        assert!(!store.has_agent_writes(id));
        store.empty_trash();
        assert_eq!(fs::read_dir(store.root().join("trash")).unwrap().count(), 0);
    }

    #[test]
    fn an_ended_task_whose_turn_was_never_released_is_still_scheduled() {
        // Its front-end died between saving the outcome and releasing the turn: the
        // next tick must see it to release it.
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for id in 1..=3 {
            store.save(&ended(id)).unwrap();
        }
        fs::create_dir_all(store.work_path(TaskId(2))).unwrap();
        let unsettled = |store: &Store| -> Vec<u64> {
            store.unsettled().unwrap().iter().map(|t| t.id.0).collect()
        };
        assert_eq!(unsettled(&store), [2]);
        assert!(unfinished(&store).is_empty(), "nothing to start");
        fs::remove_dir(store.work_path(TaskId(2))).unwrap();
        assert!(unsettled(&store).is_empty());
    }

    #[test]
    fn a_record_damaged_in_place_is_named_by_the_list_whatever_the_index_says() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for id in 1..=3 {
            store.save(&ended(id)).unwrap();
        }
        // Written over in place (same inode), as a disk that lied would leave it.
        fs::write(store.record_path(TaskId(2)), "{not json").unwrap();
        let (summaries, damaged) = store.summaries().unwrap();
        assert_eq!(
            states(&summaries),
            [(1, TaskState::Done), (3, TaskState::Done)]
        );
        let damaged: Vec<u64> = damaged.iter().map(|(id, _)| id.0).collect();
        assert_eq!(damaged, [2]);
        assert!(unfinished(&store).is_empty());
    }

    #[test]
    fn damaged_record_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        fs::create_dir_all(store.task_dir(TaskId(4))).unwrap();
        fs::write(store.task_dir(TaskId(4)).join("task.json"), "{not json").unwrap();
        let err = store.load(TaskId(4)).unwrap_err().to_string();
        assert!(err.contains("tasks/4/task.json"), "{err}");
    }
}
