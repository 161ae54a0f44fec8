//! The agent's working copy: a repository of its own whose object database borrows
//! the user's through `objects/info/alternates`, so creating it copies no objects and
//! costs one checkout of the snapshot's files — like `git clone --local --shared`.
//!
//! This is the local fast path of a sandbox: the folder is bind-mounted into the
//! container, and the user's object folder is mounted read-only at the same absolute
//! path so that the alternates entry resolves on both sides.

use std::path::{Path, PathBuf};

use git2::build::CheckoutBuilder;
use git2::{Oid, Repository, RepositoryInitOptions};

use super::GitError;

#[derive(Debug, Clone)]
pub struct Workspace {
    pub path: PathBuf,
    /// The user's object folder the workspace borrows from.
    pub shared_objects: PathBuf,
}

/// Creates the workspace at `path` with `branch` checked out at `base`.
pub fn create(
    user_repo: &Repository,
    path: &Path,
    branch: &str,
    base: Oid,
) -> Result<Workspace, GitError> {
    if path.exists() {
        // A previous attempt died half-way; nothing in it is the agent's yet.
        std::fs::remove_dir_all(path).map_err(|source| GitError::Write {
            path: path.to_path_buf(),
            source,
        })?;
    }
    let shared_objects = user_repo.commondir().join("objects");
    let shared_objects = shared_objects
        .canonicalize()
        .map_err(|source| GitError::Read {
            path: shared_objects.clone(),
            source,
        })?;

    let mut init = RepositoryInitOptions::new();
    init.no_reinit(true).initial_head(branch);
    let repo = Repository::init_opts(path, &init)?;
    let alternates = repo.path().join("objects/info/alternates");
    std::fs::write(&alternates, format!("{}\n", shared_objects.display())).map_err(|source| {
        GitError::Write {
            path: alternates.clone(),
            source,
        }
    })?;
    // Re-open so libgit2 reads the alternates file we just wrote.
    let repo = Repository::open(path)?;
    let commit = repo.find_commit(base)?;
    repo.branch(branch, &commit, true)?;
    repo.set_head(&format!("refs/heads/{branch}"))?;
    let mut checkout = CheckoutBuilder::new();
    // The agent gets the snapshot's bytes exactly; skipping filters (eol, ident) also
    // skips an attribute lookup per file, a large part of checking out big trees.
    checkout.force().disable_filters(true);
    repo.checkout_head(Some(&mut checkout))?;
    Ok(Workspace {
        path: path.to_path_buf(),
        shared_objects,
    })
}

/// Gives every file of the workspace to `uid:gid`, so an agent running as that user
/// can write. Only needed when the front-end runs as another user (root).
pub fn chown_tree(path: &Path, uid: u32, gid: u32) -> Result<(), GitError> {
    fn walk(dir: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
        std::os::unix::fs::lchown(dir, Some(uid), Some(gid))?;
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                walk(&entry.path(), uid, gid)?;
            } else {
                std::os::unix::fs::lchown(entry.path(), Some(uid), Some(gid))?;
            }
        }
        Ok(())
    }
    walk(path, uid, gid).map_err(|source| GitError::Write {
        path: path.to_path_buf(),
        source,
    })?;
    refresh_index_stats(path)
}

/// Records the files' current stat data in the workspace's index, keeping their
/// object ids. A `chown` changes every file's ctime, uid and gid; without this, git
/// would see every entry as possibly modified and re-read all files (seconds on a
/// 50 000-file tree) when the task is finalized.
fn refresh_index_stats(path: &Path) -> Result<(), GitError> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;

    let repo = Repository::open(path)?;
    let mut index = repo.index()?;
    let entries: Vec<git2::IndexEntry> = index.iter().collect();
    for mut entry in entries {
        let file = path.join(std::ffi::OsStr::from_bytes(&entry.path));
        let Ok(meta) = std::fs::symlink_metadata(&file) else {
            continue;
        };
        // The index stores 32-bit fields; git truncates the same way.
        entry.ctime = git2::IndexTime::new(meta.ctime() as i32, meta.ctime_nsec() as u32);
        entry.mtime = git2::IndexTime::new(meta.mtime() as i32, meta.mtime_nsec() as u32);
        entry.dev = meta.dev() as u32;
        entry.ino = meta.ino() as u32;
        entry.uid = meta.uid();
        entry.gid = meta.gid();
        entry.file_size = meta.len() as u32;
        index.add(&entry)?;
    }
    index.write()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::test_support::repo_with;

    #[test]
    fn after_a_chown_the_workspace_is_still_clean_without_rereading_files() {
        let (_d, user) = repo_with(&[("a.txt", "a\n"), ("d/b.txt", "b\n")]);
        let head = user.head().unwrap().target().unwrap();
        let ws_dir = tempfile::tempdir().unwrap();
        let path = ws_dir.path().join("ws");
        create(&user, &path, "handoff/1-x", head).unwrap();
        let me = std::fs::metadata(&path).unwrap();
        use std::os::unix::fs::MetadataExt;
        chown_tree(&path, me.uid(), me.gid()).unwrap();
        let repo = Repository::open(&path).unwrap();
        let index = repo.index().unwrap();
        let entry = index.get_path(Path::new("d/b.txt"), 0).unwrap();
        let meta = std::fs::symlink_metadata(path.join("d/b.txt")).unwrap();
        assert_eq!(entry.ctime.seconds(), meta.ctime() as i32);
        assert_eq!(entry.ctime.nanoseconds(), meta.ctime_nsec() as u32);
        assert!(repo.statuses(None).unwrap().is_empty());
    }

    #[test]
    fn workspace_has_the_snapshot_and_borrows_objects() {
        let (_d, user) = repo_with(&[("a.txt", "a\n"), ("dir/b.txt", "b\n")]);
        let head = user.head().unwrap().target().unwrap();
        let ws_dir = tempfile::tempdir().unwrap();
        let path = ws_dir.path().join("ws");
        let ws = create(&user, &path, "handoff/1-x", head).unwrap();
        assert_eq!(
            std::fs::read_to_string(path.join("dir/b.txt")).unwrap(),
            "b\n"
        );
        let repo = Repository::open(&ws.path).unwrap();
        assert_eq!(repo.head().unwrap().shorthand().ok(), Some("handoff/1-x"));
        assert_eq!(repo.head().unwrap().target(), Some(head));
        assert!(repo.statuses(None).unwrap().is_empty(), "checkout is clean");
        // No objects were copied: the only ones are the user's.
        let loose = std::fs::read_dir(path.join(".git/objects"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().len() == 2)
            .count();
        assert_eq!(loose, 0);
    }
}
