//! The task index: what `handoff list` and the scheduler need to know of every task,
//! in one file, so that neither has to read every record. With thousands of tasks,
//! reading them all costs hundreds of milliseconds, on every `tick` of every
//! front-end.
//!
//! Records (`tasks/<id>/task.json`) stay the source of truth; the index is a cache of
//! them that can always be rebuilt from them. It is `handoff/task-index`, lines of text:
//!
//! ```text
//! H {"version":1,"boot_id":"…","compacted_len":N}   format, boot, size when rewritten
//! E [ino,size,mtime,mtime_ns,ctime,ctime_ns,5,"done","claude",…]   one task
//! D 5                                   task 5's record is being replaced: read it
//! ```
//!
//! The last line of a task wins. [`Store::save`](super::store::Store::save) — always
//! under the repository lock — appends `D id` before it replaces a record and an `E`
//! line after, so a crash in between leaves the task marked for reading, never stale;
//! once the file has grown to twice its size when last rewritten, it is rewritten
//! with one line per task (by a save, so under the lock; as is the first save with no
//! index, or after a reboot). An `E` line carries the stamp of the
//! record it summarises: inode, size, modification and change times, as git's index
//! does for files.
//!
//! What each reader trusts:
//! - the scheduler ([`Store::unfinished`](super::store::Store::unfinished)) takes the
//!   index's word that a task has ended, and reads the records of all the others
//!   (unended, marked, or missing from the index);
//! - `handoff list` ([`Store::summaries`](super::store::Store::summaries)) uses an
//!   entry only while its stamp is the record's, so a record replaced by something that
//!   does not know the index (an older Handoff, a hand edit) is read again, and the
//!   index healed.
//!
//! The folders under `tasks/` say which tasks exist: an entry without a folder is
//! ignored, a folder without an entry is read from disk. Appends are not synced, so
//! an index written before the machine last booted is not trusted at all.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::task::{Task, TaskId, TaskState};

/// The index file, under the store's root.
pub(super) const FILE: &str = "task-index";

const VERSION: u32 = 1;

/// A task as lists show it: a few fields of its record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskSummary {
    pub id: TaskId,
    pub state: TaskState,
    pub agent: String,
    pub title: String,
    pub branch: String,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Whether the result changes files that configure tools (`sensitive_files`).
    pub sensitive: bool,
    pub group: Option<TaskId>,
}

impl TaskSummary {
    pub fn of(task: &Task) -> TaskSummary {
        TaskSummary {
            id: task.id,
            state: task.state,
            agent: task.agent.clone(),
            title: task.title.clone(),
            branch: task.branch.clone(),
            started_at: task.started_at,
            finished_at: task.finished_at,
            sensitive: !task.sensitive_files.is_empty(),
            group: task.group,
        }
    }

    /// Seconds the agent has been running (or ran), as [`Task::elapsed_secs`].
    pub fn elapsed_secs(&self) -> Option<i64> {
        let start = self.started_at?;
        let end = self.finished_at.unwrap_or_else(Utc::now);
        Some((end - start).num_seconds().max(0))
    }

    /// The running time as people read it, as [`Task::elapsed_text`].
    pub fn elapsed_text(&self) -> Option<String> {
        self.elapsed_secs().map(super::task::running_time)
    }
}

/// What identifies one version of a record file: it is replaced, never rewritten in
/// place, so a new version is a new inode with its own times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp(u64, u64, i64, i64, i64, i64);

impl Stamp {
    pub fn of(meta: &std::fs::Metadata) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        Stamp(
            meta.ino(),
            meta.size(),
            meta.mtime(),
            meta.mtime_nsec(),
            meta.ctime(),
            meta.ctime_nsec(),
        )
    }

    pub fn of_stat(st: &rustix::fs::Stat) -> Stamp {
        Stamp(
            st.st_ino,
            st.st_size as u64,
            st.st_mtime,
            st.st_mtime_nsec as i64,
            st.st_ctime,
            st.st_ctime_nsec as i64,
        )
    }
}

/// One task's entry: its record's stamp and summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry(pub Stamp, pub TaskSummary);

/// An entry as it is written: one flat JSON array (about three times quicker to read
/// back than objects with named fields). Times are microseconds since the epoch.
#[derive(Serialize, Deserialize)]
struct Line(
    u64,
    u64,
    i64,
    i64,
    i64,
    i64,
    TaskId,
    TaskState,
    String,
    String,
    String,
    Option<i64>,
    Option<i64>,
    bool,
    Option<TaskId>,
);

impl From<&Entry> for Line {
    fn from(Entry(st, s): &Entry) -> Line {
        Line(
            st.0,
            st.1,
            st.2,
            st.3,
            st.4,
            st.5,
            s.id,
            s.state,
            s.agent.clone(),
            s.title.clone(),
            s.branch.clone(),
            s.started_at.map(|t| t.timestamp_micros()),
            s.finished_at.map(|t| t.timestamp_micros()),
            s.sensitive,
            s.group,
        )
    }
}

impl From<Line> for Entry {
    fn from(l: Line) -> Entry {
        Entry(
            Stamp(l.0, l.1, l.2, l.3, l.4, l.5),
            TaskSummary {
                id: l.6,
                state: l.7,
                agent: l.8,
                title: l.9,
                branch: l.10,
                started_at: l.11.and_then(DateTime::from_timestamp_micros),
                finished_at: l.12.and_then(DateTime::from_timestamp_micros),
                sensitive: l.13,
                group: l.14,
            },
        )
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    version: u32,
    boot_id: String,
    /// The file's size when it was last rewritten whole.
    compacted_len: u64,
}

/// The index as read: per task, its entry, or `None` when it is marked (its record
/// is being replaced; read the record).
#[derive(Debug, Default)]
pub struct Index {
    pub entries: HashMap<TaskId, Option<Entry>>,
}

/// Reads the index at `path`. `None` when there is none, or it cannot be trusted
/// (another format, written before this boot, a damaged line).
pub fn read(path: &Path) -> Option<Index> {
    let text = std::fs::read(path).ok()?;
    parse(&text, &boot_id())
}

fn parse(text: &[u8], boot: &str) -> Option<Index> {
    let mut lines = text.split(|&b| b == b'\n');
    let header: Header = serde_json::from_slice(lines.next()?.strip_prefix(b"H ")?).ok()?;
    if header.version != VERSION || header.boot_id != boot {
        return None;
    }
    let complete = match text.iter().rposition(|&b| b == b'\n') {
        Some(end) => &text[..end],
        None => return None,
    };
    let mut index = Index::default();
    // The header's line, then the others; an unfinished last line (an append being
    // written) is left out by `complete`.
    for line in complete.split(|&b| b == b'\n').skip(1) {
        if let Some(json) = line.strip_prefix(b"E ") {
            let entry = Entry::from(serde_json::from_slice::<Line>(json).ok()?);
            index.entries.insert(entry.1.id, Some(entry));
        } else if let Some(id) = line.strip_prefix(b"D ") {
            let id: u64 = std::str::from_utf8(id).ok()?.parse().ok()?;
            index.entries.insert(TaskId(id), None);
        } else if !line.is_empty() {
            return None;
        }
    }
    Some(index)
}

/// The line that marks `id`'s record as being replaced.
pub fn marked_line(id: TaskId) -> String {
    format!("D {id}\n")
}

pub fn entry_line(entry: &Entry) -> String {
    // Plain strings and numbers: this cannot fail.
    let json = serde_json::to_string(&Line::from(entry)).unwrap_or_default();
    format!("E {json}\n")
}

/// Appends `lines` to the index at `path` in one write, if there is an index.
/// Without one there is nothing to keep up to date: the next listing builds it.
pub fn append(path: &Path, lines: &str) -> std::io::Result<()> {
    let mut file = match std::fs::OpenOptions::new().append(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    file.write_all(lines.as_bytes())
}

/// Whether the index at `path` should be rewritten: there is none, it cannot be
/// trusted (another format or boot), or it has grown to twice its size when it was
/// last rewritten. Reads only its first line.
pub fn wants_rebuild(path: &Path) -> bool {
    use std::io::Read;
    let Ok(mut file) = std::fs::File::open(path) else {
        return true;
    };
    let Ok(len) = file.metadata().map(|m| m.len()) else {
        return true;
    };
    let mut head = [0u8; 512];
    let n = file.read(&mut head).unwrap_or(0);
    let header = head[..n]
        .split(|&b| b == b'\n')
        .next()
        .and_then(|l| l.strip_prefix(b"H "))
        .and_then(|json| serde_json::from_slice::<Header>(json).ok());
    match header {
        Some(h) if h.version == VERSION && h.boot_id == boot_id() => {
            len > 2 * h.compacted_len + 64 * 1024
        }
        _ => true,
    }
}

/// The whole index for `entries` (ascending by id), header first.
pub fn render(entries: &[Entry]) -> Vec<u8> {
    let mut body = String::with_capacity(entries.len() * 256);
    for entry in entries {
        body.push_str(&entry_line(entry));
    }
    // The header holds the file's own length: compute it with the header's length
    // included (its digits may change the length by a few bytes; close is enough).
    let boot = boot_id();
    let guess = body.len() as u64 + 128;
    let header = serde_json::to_string(&Header {
        version: VERSION,
        boot_id: boot,
        compacted_len: guess,
    })
    .unwrap_or_default();
    let mut out = Vec::with_capacity(body.len() + header.len() + 3);
    out.extend_from_slice(b"H ");
    out.extend_from_slice(header.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(body.as_bytes());
    out
}

/// Whether a file or folder last changed more than a second before `now`. File times
/// have a coarse grain (a clock tick): one changed in the moment before it was read
/// could change again with the very same stamp, so only settled ones are known
/// unchanged by their stamp (git's index treats "racily clean" files the same way).
pub fn settled(meta: &std::fs::Metadata, now: std::time::SystemTime) -> bool {
    use std::os::unix::fs::MetadataExt;
    let changed = std::time::UNIX_EPOCH
        + std::time::Duration::new(meta.ctime().max(0) as u64, meta.ctime_nsec() as u32);
    changed + std::time::Duration::from_secs(1) < now
}

fn boot_id() -> String {
    super::claim::boot_id()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(id: u64, state: TaskState) -> TaskSummary {
        TaskSummary {
            id: TaskId(id),
            state,
            agent: "shell".into(),
            title: "a \"title\"\twith\nodd characters ⟳".into(),
            branch: format!("handoff/{id}-x"),
            started_at: DateTime::from_timestamp_micros(1_780_000_000_123_456),
            finished_at: None,
            sensitive: id.is_multiple_of(2),
            group: None,
        }
    }

    fn entry(id: u64, state: TaskState) -> Entry {
        Entry(Stamp(id, 100, 1, 2, 3, 4), summary(id, state))
    }

    #[test]
    fn the_last_line_of_a_task_wins_and_a_mark_means_read_the_record() {
        let mut text = render(&[entry(1, TaskState::Done), entry(2, TaskState::Done)]);
        text.extend(marked_line(TaskId(2)).bytes());
        text.extend(entry_line(&entry(1, TaskState::Queued)).bytes());
        text.extend(entry_line(&entry(3, TaskState::Running)).bytes());
        let index = parse(&text, &boot_id()).unwrap();
        assert_eq!(index.entries.len(), 3);
        assert_eq!(
            index.entries[&TaskId(1)].as_ref().unwrap().1.state,
            TaskState::Queued
        );
        assert_eq!(index.entries[&TaskId(2)], None);
        assert_eq!(
            index.entries[&TaskId(3)],
            Some(entry(3, TaskState::Running))
        );
    }

    #[test]
    fn an_unfinished_last_line_is_left_out() {
        let mut text = render(&[entry(1, TaskState::Done)]);
        let line = entry_line(&entry(1, TaskState::Queued));
        text.extend(line[..line.len() / 2].bytes());
        let index = parse(&text, &boot_id()).unwrap();
        assert_eq!(
            index.entries[&TaskId(1)].as_ref().unwrap().1.state,
            TaskState::Done
        );
    }

    #[test]
    fn an_index_of_another_boot_format_or_with_a_damaged_line_is_not_trusted() {
        let text = render(&[entry(1, TaskState::Done)]);
        assert!(parse(&text, &boot_id()).is_some());
        assert!(parse(&text, "another boot").is_none());
        let other = String::from_utf8(text.clone())
            .unwrap()
            .replace("\"version\":1", "\"version\":2");
        assert!(parse(other.as_bytes(), &boot_id()).is_none());
        let mut damaged = text.clone();
        damaged.extend(b"E [not json]\n");
        assert!(parse(&damaged, &boot_id()).is_none());
        assert!(parse(b"", &boot_id()).is_none());
    }

    #[test]
    fn summaries_survive_the_round_trip_to_the_microsecond() {
        let e = entry(7, TaskState::Done);
        let text = render(std::slice::from_ref(&e));
        let back = parse(&text, &boot_id()).unwrap();
        assert_eq!(back.entries[&TaskId(7)], Some(e));
    }
}
