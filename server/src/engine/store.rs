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
//! ```
//! Every record write is write-to-temp, fsync, rename, so a reader never sees half a
//! record and a crash leaves either the old or the new one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::task::{Task, TaskId};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("task record {path} is damaged ({source}); move it away or remove the task folder")]
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
}

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
        Ok(Store { root })
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

    pub fn save(&self, task: &Task) -> Result<(), StoreError> {
        let dir = self.task_dir(task.id);
        fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        let mut bytes = serde_json::to_vec_pretty(task).map_err(|source| StoreError::Corrupt {
            path: self.record_path(task.id),
            source,
        })?;
        bytes.push(b'\n');
        write_atomic(&self.record_path(task.id), &bytes)
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

    /// Ids of all tasks with a folder, ascending.
    pub fn ids(&self) -> Result<Vec<TaskId>, StoreError> {
        let dir = self.root.join("tasks");
        let mut ids: Vec<TaskId> = fs::read_dir(&dir)
            .map_err(io_err("list", &dir))?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str()?.parse::<u64>().ok())
            .map(TaskId)
            .collect();
        ids.sort();
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

    #[allow(clippy::type_complexity)]
    fn scan(&self) -> Result<(Vec<Task>, Vec<(TaskId, StoreError)>), StoreError> {
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
        let dir = self.task_dir(id);
        let trash = self.root.join("trash");
        fs::create_dir_all(&trash).map_err(io_err("create", &trash))?;
        let to = trash.join(format!(
            "{id}-{}-{}",
            std::process::id(),
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
        ));
        match fs::rename(&dir, &to) {
            Ok(()) => Ok(Some(to)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("move away", &dir)(e)),
        }
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
