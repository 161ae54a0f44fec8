//! Which paths of a working tree may differ from its index, found with one `lstat` per
//! tracked file spread over the machine's cores, and one directory read per folder
//! that holds tracked files — what libgit2's status does on one thread, where the
//! system calls are nearly all of a snapshot's time in a large repository (50 000
//! files: ~90 ms of its ~100).
//!
//! The answer is a superset: a path whose stat data differs from the index's record,
//! or which was written in the same instant as the index (git's "racily clean"
//! entries), is a candidate, and the snapshot reads its content; a path whose stat data
//! matches is taken at the index's content, as git itself does. New folders are
//! listed without being entered, and are left to the snapshot to read (or skip when
//! ignored). Whatever this module does not know to handle the way git does — merge
//! conflicts, sparse or assume-unchanged entries, intent-to-add, non-default
//! `core.*` settings, an index with no stat data — makes it decline ([`None`]), and
//! the snapshot falls back to libgit2's status.

use std::collections::{HashMap, HashSet};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use git2::{Index, IndexEntry, Repository};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use super::GitError;

/// git's flag bits of an index entry.
const ASSUME_VALID: u16 = 0x8000;
const STAGE_MASK: u16 = 0x3000;
const INTENT_TO_ADD: u16 = 1 << 13;
const SKIP_WORKTREE: u16 = 1 << 14;
const GITLINK: u32 = 0o160000;

/// Past this share of the tracked files changed by their stat data, status's own way
/// is as quick: decline.
const MAX_CANDIDATE_SHARE: usize = 10;

/// What may have changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Candidates {
    /// Tracked paths whose file may differ from the index (changed, gone, replaced).
    pub tracked: Vec<Vec<u8>>,
    /// Names in folders with tracked files that the index does not know: files,
    /// links, or whole new folders (not entered). Not yet checked against ignores.
    pub untracked: Vec<Vec<u8>>,
}

/// The candidates of `workdir` against `index`, or `None` when the index or the
/// configuration holds something this scan does not handle as git does.
pub fn candidates(
    repo: &Repository,
    index: &Index,
    workdir: &Path,
) -> Result<Option<Candidates>, GitError> {
    if index.has_conflicts() || !default_core_settings(repo)? {
        return Ok(None);
    }
    let index_path = repo.path().join("index");
    let stamp = match std::fs::metadata(&index_path) {
        Ok(m) => (m.mtime(), m.mtime_nsec()),
        // No index file: every path would be new; status handles it.
        Err(_) => return Ok(None),
    };
    let mut entries: Vec<IndexEntry> = Vec::with_capacity(index.len());
    for entry in index.iter() {
        if entry.flags & (ASSUME_VALID | STAGE_MASK) != 0
            || entry.flags_extended & (INTENT_TO_ADD | SKIP_WORKTREE) != 0
        {
            return Ok(None);
        }
        if entry.mode == GITLINK {
            // Submodules are left out of snapshots.
            continue;
        }
        entries.push(entry);
    }
    if entries.is_empty() {
        return Ok(None);
    }

    // Tracked files by folder (the root is `b""`), with every folder on the way to one.
    let known: HashSet<&[u8]> = entries.iter().map(|e| e.path.as_slice()).collect();
    let mut by_folder: HashMap<&[u8], Vec<usize>> = HashMap::new();
    by_folder.insert(b"", vec![]);
    for (i, e) in entries.iter().enumerate() {
        let folder = e.path.rsplit_once_byte(b'/').map_or(&b""[..], |(f, _)| f);
        if let Some(files) = by_folder.get_mut(folder) {
            files.push(i);
            continue;
        }
        by_folder.insert(folder, vec![i]);
        // Its parents, up to the first already known (whose own are known too).
        let mut parent = folder;
        while let Some((up, _)) = parent.rsplit_once_byte(b'/') {
            if by_folder.contains_key(up) {
                break;
            }
            by_folder.insert(up, vec![]);
            parent = up;
        }
    }
    let mut folders: Vec<(&[u8], Vec<usize>)> = by_folder.into_iter().collect();
    // The biggest first, so that the threads end together.
    folders.sort_unstable_by_key(|(_, files)| std::cmp::Reverse(files.len()));
    let folder_names: HashSet<&[u8]> = folders.iter().map(|(f, _)| *f).collect();

    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8);
    let next = AtomicUsize::new(0);
    let scan = Scan {
        workdir,
        entries: &entries,
        known: &known,
        folders: &folder_names,
        stamp,
    };
    let found: Vec<Result<Candidates, GitError>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let (next, folders, scan) = (&next, &folders, &scan);
                scope.spawn(move || -> Result<Candidates, GitError> {
                    let mut out = Candidates::default();
                    loop {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        let Some((folder, files)) = folders.get(n) else {
                            return Ok(out);
                        };
                        scan.folder(folder, files, &mut out)?;
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a scanning thread panicked"))
            .collect()
    });
    let mut all = Candidates::default();
    for part in found {
        let part = part?;
        all.tracked.extend(part.tracked);
        all.untracked.extend(part.untracked);
    }
    if all.tracked.len() * MAX_CANDIDATE_SHARE > entries.len() && all.tracked.len() > 100 {
        return Ok(None);
    }
    all.tracked.sort_unstable();
    all.untracked.sort_unstable();
    Ok(Some(all))
}

trait RsplitOnceByte {
    fn rsplit_once_byte(&self, b: u8) -> Option<(&[u8], &[u8])>;
}

impl RsplitOnceByte for [u8] {
    fn rsplit_once_byte(&self, b: u8) -> Option<(&[u8], &[u8])> {
        let i = self.iter().rposition(|&c| c == b)?;
        Some((&self[..i], &self[i + 1..]))
    }
}

/// What every scanning thread reads.
struct Scan<'a> {
    workdir: &'a Path,
    entries: &'a [IndexEntry],
    known: &'a HashSet<&'a [u8]>,
    folders: &'a HashSet<&'a [u8]>,
    /// The index file's modification time.
    stamp: (i64, i64),
}

impl Scan<'_> {
    /// Stats the tracked files of `folder` (indices into `entries`) through one
    /// handle on it, and lists it for names the index does not know.
    fn folder(&self, folder: &[u8], files: &[usize], out: &mut Candidates) -> Result<(), GitError> {
        let path = self
            .workdir
            .join(Path::new(std::ffi::OsStr::from_bytes(folder)));
        let Ok(dir) = rustix::fs::openat(rustix::fs::CWD, &path, DIR_FLAGS, Mode::empty()) else {
            // Gone, or a file or a link now: all of its files are candidates, and
            // what stands there is found new by the folder above.
            out.tracked
                .extend(files.iter().map(|&i| self.entries[i].path.clone()));
            return Ok(());
        };
        for &i in files {
            let entry = &self.entries[i];
            let name = entry
                .path
                .rsplit_once_byte(b'/')
                .map_or(&entry.path[..], |(_, n)| n);
            let same = rustix::fs::statat(
                &dir,
                std::ffi::OsStr::from_bytes(name),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .is_ok_and(|st| unchanged(entry, &st, self.stamp));
            if !same {
                out.tracked.push(entry.path.clone());
            }
        }
        let mut listing = rustix::fs::Dir::read_from(&dir).map_err(|e| GitError::Read {
            path: path.clone(),
            source: e.into(),
        })?;
        while let Some(item) = listing.read() {
            let item = item.map_err(|e| GitError::Read {
                path: path.clone(),
                source: e.into(),
            })?;
            let name = item.file_name().to_bytes();
            if matches!(name, b"." | b".." | b".git") {
                continue;
            }
            let rel = match folder.is_empty() {
                true => name.to_vec(),
                false => [folder, b"/", name].concat(),
            };
            let is_new = match self.folders.contains(rel.as_slice()) {
                // A folder of tracked files that is a file or a link now: new as such.
                true => !is_dir(&dir, &item),
                false => !self.known.contains(rel.as_slice()),
            };
            if is_new {
                out.untracked.push(rel);
            }
        }
        Ok(())
    }
}

fn is_dir(dir: &impl AsFd, item: &rustix::fs::DirEntry) -> bool {
    match item.file_type() {
        FileType::Directory => true,
        FileType::Unknown => rustix::fs::statat(dir, item.file_name(), AtFlags::SYMLINK_NOFOLLOW)
            .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory),
        _ => false,
    }
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// Whether a tracked file is as the index recorded it, by its stat data (and not
/// written in the index's own instant, when equal stat data proves nothing).
fn unchanged(entry: &IndexEntry, st: &rustix::fs::Stat, stamp: (i64, i64)) -> bool {
    let kind = FileType::from_raw_mode(st.st_mode);
    let exec = st.st_mode & 0o100 != 0;
    let kind_matches = match entry.mode {
        0o120000 => kind == FileType::Symlink,
        0o100755 => kind == FileType::RegularFile && exec,
        0o100644 => kind == FileType::RegularFile && !exec,
        _ => false,
    };
    let racy = (
        entry.mtime.seconds() as i64,
        entry.mtime.nanoseconds() as i64,
    ) >= stamp;
    kind_matches
        && !racy
        && entry.file_size == st.st_size as u32
        && entry.mtime.seconds() == st.st_mtime as i32
        && entry.mtime.nanoseconds() == st.st_mtime_nsec as u32
        && entry.ctime.seconds() == st.st_ctime as i32
        && entry.ctime.nanoseconds() == st.st_ctime_nsec as u32
        && entry.ino == st.st_ino as u32
}

/// Whether the repository's `core.*` settings are those the scan compares stat data
/// and names under: file modes and symlinks trusted, names case-sensitive, ctime
/// trusted, no file-system monitor.
fn default_core_settings(repo: &Repository) -> Result<bool, GitError> {
    let config = repo.config()?;
    let flag = |name: &str, default: bool| config.get_bool(name).unwrap_or(default);
    Ok(flag("core.filemode", true)
        && flag("core.symlinks", true)
        && !flag("core.ignorecase", false)
        && flag("core.trustctime", true)
        && !flag("core.precomposeunicode", false)
        && config.get_string("core.checkstat").is_err()
        && config.get_string("core.fsmonitor").is_err())
}
