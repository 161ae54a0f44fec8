//! Base checkouts: the files of one commit, checked out once and shared, read-only,
//! by every task that starts on it. A task's workspace is an overlay: its own start
//! layer ([`super::layer`]) and this checkout below, the agent's writes above — so a
//! task costs what it changes, not the size of the repository.
//!
//! A base holds a repository of its own, made here: a pack of the commit's history
//! (at most [`HISTORY_DEPTH`] commits deep, shallow beyond), never the user's other
//! branches, stashes or unreachable objects, and a configuration this module writes.
//! Nothing but the host writes a base; agents only ever see it through an overlay.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use git2::build::CheckoutBuilder;
use git2::{Oid, Repository, RepositoryInitOptions};

use super::GitError;

/// Commits of history a base carries; older ones are cut off (a shallow repository).
pub const HISTORY_DEPTH: usize = 100;

/// The git configuration of every base and layer: stat checks that survive the
/// overlay (inode and device numbers change there), and nothing else.
pub const GIT_CONFIG: &str = "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n\tlogallrefupdates = true\n\tcheckStat = minimal\n\ttrustctime = false\n[splitIndex]\n\tsharedIndexExpire = never\n";

/// A checked-out base, ready to be an overlay's lowest layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Base {
    /// The checkout: the commit's files and `.git`.
    pub tree: PathBuf,
    pub commit: Oid,
}

/// The folder of the base of `commit` for files owned by `uid`, under `root`.
pub fn base_dir(root: &Path, commit: Oid, uid: u32) -> PathBuf {
    root.join(format!("{commit}-u{uid}"))
}

/// The base of `commit` under `root`, made now if there is none. Building it costs a
/// checkout and a pack of the history, once per commit; two front-ends building the
/// same base at once both succeed, one of them keeps its copy.
pub fn ensure(
    user: &Repository,
    root: &Path,
    commit: Oid,
    owner: (u32, u32),
) -> Result<Base, GitError> {
    let dir = base_dir(root, commit, owner.0);
    let tree = dir.join("tree");
    if tree.join(".git/index").exists() {
        touch(&dir);
        return Ok(Base { tree, commit });
    }
    std::fs::create_dir_all(root).map_err(|source| GitError::Write {
        path: root.to_path_buf(),
        source,
    })?;
    let tmp = tempfile::Builder::new()
        .prefix(".building-")
        .tempdir_in(root)
        .map_err(|source| GitError::Write {
            path: root.to_path_buf(),
            source,
        })?;
    build(user, &tmp.path().join("tree"), commit, owner)?;
    match std::fs::rename(tmp.path(), &dir) {
        Ok(()) => {
            // The folder now lives under its final name; nothing for TempDir to delete.
            let _ = tmp.keep();
        }
        // Another front-end finished first: use its base, drop ours.
        Err(_) if tree.join(".git/index").exists() => {}
        Err(source) => {
            return Err(GitError::Write {
                path: dir.clone(),
                source,
            })
        }
    }
    Ok(Base { tree, commit })
}

/// Marks a base as used now, so that pruning keeps the ones in use.
fn touch(dir: &Path) {
    let _ = std::fs::write(dir.join("used"), b"");
}

fn build(user: &Repository, tree: &Path, commit: Oid, owner: (u32, u32)) -> Result<(), GitError> {
    let mut init = RepositoryInitOptions::new();
    init.no_reinit(true);
    let repo = Repository::init_opts(tree, &init)?;
    let git_dir = repo.path().to_path_buf();
    write(&git_dir.join("config"), GIT_CONFIG.as_bytes())?;
    // libgit2's samples are not needed, and nothing of ours runs hooks anyway.
    let _ = std::fs::remove_dir_all(git_dir.join("hooks"));
    let shallow = write_history_pack(user, &git_dir.join("objects/pack"), commit, None)?;
    if !shallow.is_empty() {
        let list: String = shallow.iter().map(|c| format!("{c}\n")).collect();
        write(&git_dir.join("shallow"), list.as_bytes())?;
    }
    write(&git_dir.join("HEAD"), format!("{commit}\n").as_bytes())?;
    // Re-open so that the pack written above is seen.
    let repo = Repository::open(tree)?;
    let target = repo.find_commit(commit)?.tree()?;
    let mut checkout = CheckoutBuilder::new();
    // The agent gets the commit's exact bytes; skipping filters (eol, ident) also
    // skips an attribute lookup per file.
    checkout.force().disable_filters(true);
    repo.checkout_tree(target.as_object(), Some(&mut checkout))?;
    let me = std::fs::metadata(tree).map_err(|source| GitError::Read {
        path: tree.to_path_buf(),
        source,
    })?;
    if me.uid() != owner.0 || me.gid() != owner.1 {
        chown_tree(tree, owner.0, owner.1)?;
    }
    // The start layers' indexes hold only what differs from this one.
    super::split_index::share_base_index(&git_dir, owner)
}

/// Gives every file of the checkout to `uid:gid`, so an agent running as that user
/// can write. Only needed when the front-end runs as another user (root).
fn chown_tree(path: &Path, uid: u32, gid: u32) -> Result<(), GitError> {
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

/// Writes into `pack_dir` a pack of everything reachable from `tip` (at most
/// [`HISTORY_DEPTH`] commits deep) that is not reachable from `hide`. Returns the
/// commits whose parents were cut off, for `.git/shallow`. Nothing is written when
/// there is nothing new.
pub fn write_history_pack(
    user: &Repository,
    pack_dir: &Path,
    tip: Oid,
    hide: Option<Oid>,
) -> Result<Vec<Oid>, GitError> {
    let mut walk = user.revwalk()?;
    walk.set_sorting(git2::Sort::TOPOLOGICAL)?;
    walk.push(tip)?;
    if let Some(h) = hide {
        walk.hide(h)?;
    }
    let mut packed = std::collections::HashSet::new();
    let mut truncated = false;
    for oid in walk {
        let oid = oid?;
        if packed.len() >= HISTORY_DEPTH {
            truncated = true;
            break;
        }
        packed.insert(oid);
    }
    let mut builder = user.packbuilder()?;
    builder.set_threads(0);
    match hide {
        // Every commit between the two, each with only the trees and blobs that differ
        // from its first parent's: when that parent is `h` or another of them, that is
        // exactly what `h` lacks, found in time that grows with the change.
        Some(h)
            if !truncated
                && packed.iter().all(|c| {
                    user.find_commit(*c)
                        .ok()
                        .and_then(|c| c.parent_id(0).ok())
                        .is_some_and(|p| p == h || packed.contains(&p))
                }) =>
        {
            for oid in &packed {
                let commit = user.find_commit(*oid)?;
                builder.insert_object(*oid, None)?;
                let parent = commit.parent(0)?.tree()?;
                insert_changed(user, &mut builder, Some(&parent), &commit.tree()?)?;
            }
        }
        // Otherwise only the objects `h` lacks, as git's own `pack-objects` does.
        // libgit2 reads all of `h`'s trees to know which (never its blobs), where
        // inserting each commit would pack its whole tree again: for a start layer on a
        // 50 000-file base, seconds for a one-file change.
        Some(h) if !truncated => {
            let mut walk = user.revwalk()?;
            walk.push(tip)?;
            walk.hide(h)?;
            builder.insert_walk(&mut walk)?;
        }
        _ => {
            for oid in &packed {
                builder.insert_commit(*oid)?;
            }
        }
    }
    let mut shallow = Vec::new();
    for oid in &packed {
        let c = user.find_commit(*oid)?;
        let cut = c.parent_ids().any(|p| {
            !packed.contains(&p) && hide.is_none_or(|h| p != h && !is_ancestor(user, p, h))
        });
        if cut {
            shallow.push(*oid);
        }
    }
    shallow.sort();
    if builder.object_count() > 0 {
        std::fs::create_dir_all(pack_dir).map_err(|source| GitError::Write {
            path: pack_dir.to_path_buf(),
            source,
        })?;
        builder.write(pack_dir, 0o644)?;
    }
    Ok(shallow)
}

/// Inserts `new` and what it holds that `old` (the same folder in another tree) does
/// not: subtrees that differ are compared in turn, new ones inserted whole.
fn insert_changed(
    repo: &Repository,
    builder: &mut git2::PackBuilder<'_>,
    old: Option<&git2::Tree<'_>>,
    new: &git2::Tree<'_>,
) -> Result<(), GitError> {
    if old.is_some_and(|o| o.id() == new.id()) {
        return Ok(());
    }
    builder.insert_object(new.id(), None)?;
    for entry in new.iter() {
        let before = old.and_then(|o| o.get_name_bytes(entry.name_bytes()));
        if before.as_ref().is_some_and(|b| b.id() == entry.id()) {
            continue;
        }
        match entry.kind() {
            Some(git2::ObjectType::Tree) => {
                let old_sub = match before {
                    Some(b) if b.kind() == Some(git2::ObjectType::Tree) => {
                        Some(repo.find_tree(b.id())?)
                    }
                    _ => None,
                };
                match old_sub {
                    Some(o) => {
                        insert_changed(repo, builder, Some(&o), &repo.find_tree(entry.id())?)?
                    }
                    None => builder.insert_tree(entry.id())?,
                }
            }
            Some(git2::ObjectType::Blob) => builder.insert_object(entry.id(), None)?,
            // Submodules' commits are not in this repository.
            _ => {}
        }
    }
    Ok(())
}

fn is_ancestor(repo: &Repository, commit: Oid, of: Oid) -> bool {
    commit == of || repo.graph_descendant_of(of, commit).unwrap_or(false)
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), GitError> {
    std::fs::write(path, bytes).map_err(|source| GitError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Removes bases under `root` not used in the last `keep_days`, except those named
/// in `in_use`. Returns how many were removed.
pub fn prune(root: &Path, in_use: &[PathBuf], keep: std::time::Duration) -> usize {
    let Ok(entries) = std::fs::read_dir(root) else {
        return 0;
    };
    let now = std::time::SystemTime::now();
    let mut removed = 0;
    for entry in entries.flatten() {
        let dir = entry.path();
        let used = std::fs::metadata(dir.join("used"))
            .or_else(|_| std::fs::metadata(&dir))
            .and_then(|m| m.modified())
            .ok();
        let old = used
            .and_then(|t| now.duration_since(t).ok())
            .unwrap_or_default()
            > keep;
        if old
            && !in_use.iter().any(|p| p.starts_with(&dir))
            && crate::untrusted::remove_tree(&dir).is_ok()
        {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::test_support::{commit_all, me, repo_with};

    #[test]
    fn a_base_is_the_commits_files_and_a_clean_repository_of_its_own_history() {
        let (dir, user) = repo_with(&[("a.txt", "a\n"), ("d/b.txt", "b\n")]);
        std::fs::write(dir.path().join("a.txt"), "a2\n").unwrap();
        let second = commit_all(&user, "second");
        // Another branch the agent must not see.
        let other = {
            std::fs::write(dir.path().join("secret.txt"), "other branch\n").unwrap();
            let o = commit_all(&user, "other");
            user.reference("refs/heads/other", o, true, "").unwrap();
            user.reset(
                user.find_commit(second).unwrap().as_object(),
                git2::ResetType::Hard,
                None,
            )
            .unwrap();
            o
        };
        let root = tempfile::tempdir().unwrap();
        let base = ensure(&user, root.path(), second, me()).unwrap();
        assert_eq!(
            std::fs::read_to_string(base.tree.join("a.txt")).unwrap(),
            "a2\n"
        );
        assert!(!base.tree.join("secret.txt").exists());
        let repo = Repository::open(&base.tree).unwrap();
        assert!(repo.statuses(None).unwrap().is_empty(), "checkout is clean");
        assert_eq!(repo.head().unwrap().target(), Some(second));
        let log: Vec<Oid> = {
            let mut w = repo.revwalk().unwrap();
            w.push_head().unwrap();
            w.map(|o| o.unwrap()).collect()
        };
        assert_eq!(log.len(), 2, "the whole (short) history is there");
        assert!(repo.find_commit(other).is_err(), "other branches are not");
        assert!(!base.tree.join(".git/objects/info/alternates").exists());
        // A second call finds it.
        assert_eq!(ensure(&user, root.path(), second, me()).unwrap(), base);
    }

    #[test]
    fn long_histories_are_cut_and_marked_shallow() {
        let (dir, user) = repo_with(&[("n.txt", "0\n")]);
        let mut last = user.head().unwrap().target().unwrap();
        for i in 1..(HISTORY_DEPTH + 5) {
            std::fs::write(dir.path().join("n.txt"), format!("{i}\n")).unwrap();
            last = commit_all(&user, &format!("c{i}"));
        }
        let root = tempfile::tempdir().unwrap();
        let base = ensure(&user, root.path(), last, me()).unwrap();
        let shallow = std::fs::read_to_string(base.tree.join(".git/shallow")).unwrap();
        assert_eq!(shallow.lines().count(), 1);
        let repo = Repository::open(&base.tree).unwrap();
        assert!(repo.is_shallow());
        let mut w = repo.revwalk().unwrap();
        w.push_head().unwrap();
        assert_eq!(w.count(), HISTORY_DEPTH);
    }
}
