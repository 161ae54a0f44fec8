//! Snapshots: HEAD plus uncommitted and untracked (not ignored) changes, as a commit.
//!
//! The user's index, working tree, stash and refs are never touched: the tree is built
//! in an in-memory index from HEAD's tree plus the working-tree files that `git status`
//! reports, so the cost grows with the number of changed files, not with the size of
//! the repository (apart from the status scan itself, which git pays too).

use std::path::Path;

use git2::{Index, Oid, Repository, Signature, Status, StatusOptions};

use super::GitError;

/// The result of a snapshot: the commit to start from and whether it had to be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    pub commit: Oid,
    /// The commit the snapshot is on top of (HEAD); `commit` itself when clean.
    pub head: Oid,
    /// False when the working tree was clean and `commit` is HEAD itself.
    pub created: bool,
}

pub fn head_commit(repo: &Repository) -> Result<git2::Commit<'_>, GitError> {
    let head = repo.head().map_err(|e| match e.code() {
        git2::ErrorCode::UnbornBranch | git2::ErrorCode::NotFound => GitError::NoCommits {
            path: repo.path().to_path_buf(),
        },
        _ => GitError::Git(e),
    })?;
    Ok(head.peel_to_commit()?)
}

/// Commits the working tree of `repo` on top of its HEAD without moving HEAD or
/// touching the index. `message` is the commit message of the snapshot commit.
pub fn snapshot(repo: &Repository, sig: &Signature, message: &str) -> Result<Snapshot, GitError> {
    let head = head_commit(repo)?;
    let workdir = repo.workdir().ok_or_else(|| GitError::Bare {
        path: repo.path().to_path_buf(),
    })?;

    let mut opts = StatusOptions::new();
    opts.include_untracked(true)
        .recurse_untracked_dirs(true)
        .include_ignored(false)
        .exclude_submodules(true)
        .renames_head_to_index(false);
    let statuses = repo.statuses(Some(&mut opts))?;
    // Paths as bytes: file names need not be UTF-8.
    let changed: Vec<Vec<u8>> = statuses
        .iter()
        .filter(|s| s.status() != Status::CURRENT && !s.status().contains(Status::IGNORED))
        .map(|s| s.path_bytes().to_vec())
        .collect();
    if changed.is_empty() {
        return Ok(Snapshot {
            commit: head.id(),
            head: head.id(),
            created: false,
        });
    }

    let mut index = Index::new()?;
    index.read_tree(&head.tree()?)?;
    for path in &changed {
        stage_from_workdir(repo, &mut index, workdir, path)?;
    }
    let tree_id = index.write_tree_to(repo)?;
    if tree_id == head.tree_id() {
        // Only mode-less noise (e.g. an empty untracked dir): nothing to record.
        return Ok(Snapshot {
            commit: head.id(),
            head: head.id(),
            created: false,
        });
    }
    let tree = repo.find_tree(tree_id)?;
    let commit = repo.commit(None, sig, sig, message, &tree, &[&head])?;
    Ok(Snapshot {
        commit,
        head: head.id(),
        created: true,
    })
}

/// Puts the working-tree version of `path` into `index`, or removes it if it is gone.
fn stage_from_workdir(
    repo: &Repository,
    index: &mut Index,
    workdir: &Path,
    path: &[u8],
) -> Result<(), GitError> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;

    let rel = Path::new(std::ffi::OsStr::from_bytes(path));
    let full = workdir.join(rel);
    let meta = match std::fs::symlink_metadata(&full) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            index.remove_path(rel)?;
            return Ok(());
        }
        Err(source) => return Err(GitError::Read { path: full, source }),
    };
    let (id, mode) = if meta.file_type().is_symlink() {
        let target = std::fs::read_link(&full).map_err(|source| GitError::Read {
            path: full.clone(),
            source,
        })?;
        let bytes = target.as_os_str().as_encoded_bytes();
        (repo.blob(bytes)?, 0o120000)
    } else if meta.is_file() {
        let exec = meta.permissions().mode() & 0o111 != 0;
        (
            repo.blob_path(&full)?,
            if exec { 0o100755 } else { 0o100644 },
        )
    } else {
        // A directory here is a nested repository or an empty folder: git does not
        // track either as a file, so neither does the snapshot.
        return Ok(());
    };
    let entry = super::content_entry(path, id, mode, meta.len() as u32);
    index.add(&entry)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::test_support::{commit_all, read_blob, repo_with};
    use std::fs;

    fn sig() -> Signature<'static> {
        Signature::now("t", "t@example.com").unwrap()
    }

    #[test]
    fn clean_tree_snapshots_to_head() {
        let (_d, repo) = repo_with(&[("a.txt", "a\n")]);
        let snap = snapshot(&repo, &sig(), "snap").unwrap();
        assert!(!snap.created);
        assert_eq!(snap.commit, repo.head().unwrap().target().unwrap());
    }

    #[test]
    fn uncommitted_untracked_and_deleted_files_are_captured_without_touching_the_index() {
        let (dir, repo) = repo_with(&[
            ("a.txt", "a\n"),
            ("gone.txt", "x\n"),
            (".gitignore", "*.log\n"),
        ]);
        let w = dir.path();
        fs::write(w.join("a.txt"), "changed\n").unwrap();
        fs::write(w.join("new.txt"), "new\n").unwrap();
        fs::create_dir(w.join("sub")).unwrap();
        fs::write(w.join("sub/deep.txt"), "deep\n").unwrap();
        fs::write(w.join("debug.log"), "ignored\n").unwrap();
        fs::remove_file(w.join("gone.txt")).unwrap();
        let index_before = fs::read(repo.path().join("index")).unwrap();
        let head_before = repo.head().unwrap().target().unwrap();

        let snap = snapshot(&repo, &sig(), "snap").unwrap();

        assert!(snap.created);
        let c = repo.find_commit(snap.commit).unwrap();
        assert_eq!(c.parent_id(0).unwrap(), head_before);
        assert_eq!(
            read_blob(&repo, snap.commit, "a.txt").as_deref(),
            Some("changed\n")
        );
        assert_eq!(
            read_blob(&repo, snap.commit, "new.txt").as_deref(),
            Some("new\n")
        );
        assert_eq!(
            read_blob(&repo, snap.commit, "sub/deep.txt").as_deref(),
            Some("deep\n")
        );
        assert_eq!(read_blob(&repo, snap.commit, "debug.log"), None);
        assert_eq!(read_blob(&repo, snap.commit, "gone.txt"), None);
        // The user's state is as it was.
        assert_eq!(fs::read(repo.path().join("index")).unwrap(), index_before);
        assert_eq!(repo.head().unwrap().target().unwrap(), head_before);
        assert_eq!(fs::read_to_string(w.join("a.txt")).unwrap(), "changed\n");
        let st = repo.statuses(None).unwrap();
        assert!(
            st.iter().any(|s| s.path().ok() == Some("new.txt")),
            "new.txt still untracked"
        );
    }

    #[test]
    fn staged_changes_and_exec_bits_and_symlinks_are_kept() {
        use std::os::unix::fs::PermissionsExt;
        let (dir, repo) = repo_with(&[("run.sh", "echo\n")]);
        let w = dir.path();
        fs::set_permissions(w.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("run.sh", w.join("link")).unwrap();
        fs::write(w.join("staged.txt"), "s\n").unwrap();
        let mut idx = repo.index().unwrap();
        idx.add_path(Path::new("staged.txt")).unwrap();
        idx.write().unwrap();

        let snap = snapshot(&repo, &sig(), "snap").unwrap();
        let tree = repo.find_commit(snap.commit).unwrap().tree().unwrap();
        assert_eq!(
            tree.get_path(Path::new("run.sh")).unwrap().filemode(),
            0o100755
        );
        assert_eq!(
            tree.get_path(Path::new("link")).unwrap().filemode(),
            0o120000
        );
        assert_eq!(
            read_blob(&repo, snap.commit, "staged.txt").as_deref(),
            Some("s\n")
        );
    }

    #[test]
    fn a_repository_without_commits_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let err = snapshot(&repo, &sig(), "snap").unwrap_err().to_string();
        assert!(err.contains("no commits"), "{err}");
    }

    #[test]
    fn detached_head_works() {
        let (dir, repo) = repo_with(&[("a.txt", "a\n")]);
        let head = repo.head().unwrap().target().unwrap();
        repo.set_head_detached(head).unwrap();
        fs::write(dir.path().join("a.txt"), "b\n").unwrap();
        let snap = snapshot(&repo, &sig(), "snap").unwrap();
        assert_eq!(
            repo.find_commit(snap.commit).unwrap().parent_id(0).unwrap(),
            head
        );
        let _ = commit_all;
    }
}
