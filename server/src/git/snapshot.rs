//! Snapshots: HEAD plus uncommitted and untracked (not ignored) changes, as a commit.
//!
//! The user's index, working tree, stash and refs are never touched: the tree is HEAD's
//! with the working-tree files that `git status` reports put in ([`TreeEdits`]), so the
//! cost grows with the number of changed files, not with the size of the repository
//! (apart from the status scan itself, which git pays too).

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use git2::{Oid, Repository, Signature, Status, StatusOptions};

use super::scan;
use super::tree_edit::TreeEdits;
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
    let tree_id = match tree_by_scan(repo, workdir)? {
        Some(tree) => tree,
        None => tree_by_status(repo, &head, workdir)?,
    };
    if tree_id == head.tree_id() {
        // A clean tree, or only mode-less noise (e.g. an empty untracked dir).
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

/// The working tree's tree, by libgit2's status: HEAD's tree with every path status
/// reports put in or removed.
fn tree_by_status(
    repo: &Repository,
    head: &git2::Commit<'_>,
    workdir: &Path,
) -> Result<Oid, GitError> {
    let mut opts = StatusOptions::new();
    opts.include_untracked(true)
        .recurse_untracked_dirs(true)
        .include_ignored(false)
        .exclude_submodules(true)
        .renames_head_to_index(false);
    let statuses = repo.statuses(Some(&mut opts))?;
    let mut edits = TreeEdits::new();
    // Paths as bytes: file names need not be UTF-8.
    for s in statuses
        .iter()
        .filter(|s| s.status() != Status::CURRENT && !s.status().contains(Status::IGNORED))
    {
        stage_from_workdir(repo, &mut edits, workdir, s.path_bytes())?;
    }
    edits.apply(repo, &head.tree()?)
}

/// The working tree's tree, by [`scan`]: the index's tree with the files whose stat
/// data changed and the new files that are not ignored put in. `None` when the scan
/// declines.
fn tree_by_scan(repo: &Repository, workdir: &Path) -> Result<Option<Oid>, GitError> {
    let mut index = repo.index()?;
    // What is on disk now, not what this handle read before.
    index.read(false)?;
    let Some(found) = scan::candidates(repo, &index, workdir)? else {
        return Ok(None);
    };
    // The index's tree: libgit2 reuses the trees the index's cache still vouches for.
    let base = repo.find_tree(index.write_tree()?)?;
    let mut edits = TreeEdits::new();
    for path in &found.tracked {
        stage_from_workdir(repo, &mut edits, workdir, path)?;
        if std::fs::symlink_metadata(workdir.join(Path::new(std::ffi::OsStr::from_bytes(path))))
            .is_ok_and(|m| m.is_dir())
        {
            // A file that became a folder: what is in it is new.
            stage_untracked(repo, &mut edits, workdir, path)?;
        }
    }
    for path in &found.untracked {
        stage_untracked(repo, &mut edits, workdir, path)?;
    }
    Ok(Some(edits.apply(repo, &base)?))
}

/// Puts the new path `path` (a file, a link, or a folder with everything in it) into
/// `edits`, leaving out what git ignores and nested repositories, as status does.
fn stage_untracked(
    repo: &Repository,
    edits: &mut TreeEdits,
    workdir: &Path,
    path: &[u8],
) -> Result<(), GitError> {
    let rel = Path::new(std::ffi::OsStr::from_bytes(path));
    if repo.is_path_ignored(rel)? {
        return Ok(());
    }
    let full = workdir.join(rel);
    let Ok(meta) = std::fs::symlink_metadata(&full) else {
        // Gone since it was listed.
        return Ok(());
    };
    if !meta.is_dir() {
        return stage_from_workdir(repo, edits, workdir, path);
    }
    if std::fs::symlink_metadata(full.join(".git")).is_ok() {
        // A repository of its own: git keeps it out.
        return Ok(());
    }
    let read = std::fs::read_dir(&full).map_err(|source| GitError::Read {
        path: full.clone(),
        source,
    })?;
    let mut names = vec![];
    for item in read {
        let item = item.map_err(|source| GitError::Read {
            path: full.clone(),
            source,
        })?;
        names.push([path, b"/", item.file_name().as_bytes()].concat());
    }
    names.sort_unstable();
    for name in names {
        stage_untracked(repo, edits, workdir, &name)?;
    }
    Ok(())
}

/// Puts the working-tree version of `path` into `edits`, or its removal if it is gone.
fn stage_from_workdir(
    repo: &Repository,
    edits: &mut TreeEdits,
    workdir: &Path,
    path: &[u8],
) -> Result<(), GitError> {
    use std::os::unix::fs::PermissionsExt;

    let rel = Path::new(std::ffi::OsStr::from_bytes(path));
    let full = workdir.join(rel);
    let meta = match std::fs::symlink_metadata(&full) {
        Ok(m) => m,
        // Gone, or one of its folders is a file now.
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            edits.remove(path);
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
        // A folder (or a special file) where a file was: the file is gone. What the
        // folder holds is new, and comes as such; an empty folder, a nested
        // repository or a FIFO git does not hold, and neither does the snapshot.
        edits.remove(path);
        return Ok(());
    };
    edits.put(path, id, mode);
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

    /// A repository whose committed files were last written an hour ago (so their
    /// stat data is far from the index's instant), with tracked files in an ignored
    /// folder, a link, a script, and a `.gitignore`.
    fn settled_repo() -> (tempfile::TempDir, Repository) {
        let (dir, repo) = repo_with(&[
            ("a.txt", "a\n"),
            ("sub/b.txt", "b\n"),
            ("sub/deep/c.txt", "c\n"),
            ("run.sh", "#!/bin/sh\n"),
            (".gitignore", "*.log\nbuild/\n"),
        ]);
        let w = dir.path();
        std::os::unix::fs::symlink("a.txt", w.join("link")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(w.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::create_dir(w.join("build")).unwrap();
        fs::write(w.join("build/tracked.o"), "o\n").unwrap();
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        for f in [
            "a.txt",
            "sub/b.txt",
            "sub/deep/c.txt",
            "run.sh",
            "build/tracked.o",
        ] {
            let file = fs::File::options().write(true).open(w.join(f)).unwrap();
            file.set_modified(hour_ago).unwrap();
        }
        let mut index = repo.index().unwrap();
        index
            .add_all(["*"], git2::IndexAddOption::FORCE, None)
            .unwrap();
        index.write().unwrap();
        {
            let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
            let parent = repo.head().unwrap().peel_to_commit().unwrap();
            repo.commit(Some("HEAD"), &sig(), &sig(), "settled", &tree, &[&parent])
                .unwrap();
        }
        (dir, repo)
    }

    /// The snapshot's tree both ways; asserts they agree and that the scan did not
    /// decline.
    fn both_ways(repo: &Repository) -> Oid {
        let workdir = repo.workdir().unwrap();
        let head = head_commit(repo).unwrap();
        let by_status = tree_by_status(repo, &head, workdir).unwrap();
        let by_scan = tree_by_scan(repo, workdir)
            .unwrap()
            .expect("the scan declined");
        assert_eq!(
            tree_listing(repo, by_scan),
            tree_listing(repo, by_status),
            "scan (left) and status (right) disagree"
        );
        by_scan
    }

    fn tree_listing(repo: &Repository, tree: Oid) -> Vec<String> {
        let mut out = vec![];
        repo.find_tree(tree)
            .unwrap()
            .walk(git2::TreeWalkMode::PreOrder, |dir, e| {
                out.push(format!(
                    "{dir}{} {:o} {}",
                    String::from_utf8_lossy(e.name_bytes()),
                    e.filemode(),
                    e.id()
                ));
                git2::TreeWalkResult::Ok
            })
            .unwrap();
        out
    }

    #[test]
    fn the_parallel_scan_finds_what_status_finds() {
        use std::os::unix::fs::{symlink, PermissionsExt};
        type Change = fn(&Path, &Repository);
        let scenarios: Vec<(&str, Change)> = vec![
            ("nothing", |_, _| {}),
            ("a longer file", |w, _| {
                fs::write(w.join("a.txt"), "longer\n").unwrap()
            }),
            ("same size, mtime put back: ctime tells", |w, _| {
                let before = fs::metadata(w.join("a.txt")).unwrap().modified().unwrap();
                fs::write(w.join("a.txt"), "Z\n").unwrap();
                let file = fs::File::options()
                    .write(true)
                    .open(w.join("a.txt"))
                    .unwrap();
                file.set_modified(before).unwrap();
            }),
            ("a deleted file and folder", |w, _| {
                fs::remove_file(w.join("sub/b.txt")).unwrap();
                fs::remove_dir_all(w.join("sub/deep")).unwrap();
            }),
            (
                "new files, folders, ignored ones, a nested .gitignore",
                |w, _| {
                    fs::write(w.join("new.txt"), "n\n").unwrap();
                    fs::create_dir_all(w.join("newdir/x")).unwrap();
                    fs::write(w.join("newdir/x/y.txt"), "y\n").unwrap();
                    fs::write(w.join("newdir/.gitignore"), "*.tmp\n").unwrap();
                    fs::write(w.join("newdir/a.tmp"), "t\n").unwrap();
                    fs::write(w.join("debug.log"), "l\n").unwrap();
                    fs::write(w.join("sub/deep/new.log"), "l\n").unwrap();
                    fs::write(w.join("build/new.o"), "o\n").unwrap();
                    fs::create_dir(w.join("empty")).unwrap();
                    fs::create_dir_all(w.join("ignored-dir.log/inner")).unwrap();
                    fs::write(w.join("ignored-dir.log/inner/f"), "f\n").unwrap();
                },
            ),
            ("exec bits and links", |w, _| {
                fs::set_permissions(w.join("a.txt"), fs::Permissions::from_mode(0o755)).unwrap();
                fs::set_permissions(w.join("run.sh"), fs::Permissions::from_mode(0o644)).unwrap();
                fs::remove_file(w.join("link")).unwrap();
                symlink("sub/b.txt", w.join("link")).unwrap();
                symlink("nowhere", w.join("dangling")).unwrap();
            }),
            ("a file becomes a folder, a folder a file", |w, _| {
                fs::remove_file(w.join("a.txt")).unwrap();
                fs::create_dir(w.join("a.txt")).unwrap();
                fs::write(w.join("a.txt/inner"), "i\n").unwrap();
                fs::remove_dir_all(w.join("sub/deep")).unwrap();
                fs::write(w.join("sub/deep"), "now a file\n").unwrap();
            }),
            ("a nested repository", |w, _| {
                fs::create_dir_all(w.join("vendor/lib")).unwrap();
                Repository::init(w.join("vendor/lib")).unwrap();
                fs::write(w.join("vendor/lib/f"), "f\n").unwrap();
                fs::write(w.join("vendor/kept.txt"), "k\n").unwrap();
            }),
            (
                "staged, then changed again; removed from the index only",
                |w, repo| {
                    fs::write(w.join("a.txt"), "staged\n").unwrap();
                    let mut index = repo.index().unwrap();
                    index.add_path(Path::new("a.txt")).unwrap();
                    index.remove_path(Path::new("sub/b.txt")).unwrap();
                    fs::write(w.join("staged-new.txt"), "s\n").unwrap();
                    index.add_path(Path::new("staged-new.txt")).unwrap();
                    index.write().unwrap();
                    fs::write(w.join("a.txt"), "changed after staging\n").unwrap();
                },
            ),
            ("a name that is not UTF-8", |w, _| {
                use std::os::unix::ffi::OsStrExt;
                let name = std::ffi::OsStr::from_bytes(b"caf\xe9.txt");
                fs::write(w.join(name), "x\n").unwrap();
                fs::write(w.join("sub").join(name), "y\n").unwrap();
            }),
        ];
        for (what, change) in scenarios {
            let (dir, repo) = settled_repo();
            let index_before = fs::read(repo.path().join("index")).unwrap();
            change(dir.path(), &repo);
            let index_now = fs::read(repo.path().join("index")).unwrap();
            let tree = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| both_ways(&repo)))
                .unwrap_or_else(|_| panic!("scenario {what:?}"));
            // The scan never writes the user's index.
            assert_eq!(
                fs::read(repo.path().join("index")).unwrap(),
                index_now,
                "{what}"
            );
            if what == "nothing" {
                assert_eq!(index_now, index_before);
                assert_eq!(tree, head_commit(&repo).unwrap().tree_id(), "{what}");
            } else {
                assert_ne!(tree, head_commit(&repo).unwrap().tree_id(), "{what}");
            }
        }
    }

    #[test]
    fn a_change_in_the_instant_the_index_was_written_is_not_missed() {
        // Files written, committed, then one changed at once with the same size: its
        // stat data may equal the index's record to the nanosecond on a coarse clock,
        // so it is racily clean and must be read.
        for _ in 0..20 {
            let (dir, repo) = repo_with(&[("a.txt", "a\n"), ("b.txt", "b\n")]);
            fs::write(dir.path().join("a.txt"), "Z\n").unwrap();
            let tree = both_ways(&repo);
            assert_eq!(
                read_blob(
                    &repo,
                    repo.find_commit(snapshot(&repo, &sig(), "s").unwrap().commit)
                        .unwrap()
                        .id(),
                    "a.txt"
                )
                .as_deref(),
                Some("Z\n")
            );
            assert_ne!(tree, head_commit(&repo).unwrap().tree_id());
        }
    }

    #[test]
    fn the_scan_declines_what_it_does_not_handle_as_git_does() {
        let (dir, repo) = settled_repo();
        let w = dir.path();
        repo.config()
            .unwrap()
            .set_bool("core.filemode", false)
            .unwrap();
        assert_eq!(
            tree_by_scan(&repo, w).unwrap(),
            None,
            "core.filemode = false"
        );
        repo.config()
            .unwrap()
            .set_bool("core.filemode", true)
            .unwrap();
        assert!(tree_by_scan(&repo, w).unwrap().is_some());

        // An entry marked assume-unchanged.
        let mut index = repo.index().unwrap();
        let mut entry = index.get_path(Path::new("a.txt"), 0).unwrap();
        entry.flags |= 0x8000;
        index.add(&entry).unwrap();
        index.write().unwrap();
        assert_eq!(tree_by_scan(&repo, w).unwrap(), None, "assume-unchanged");
        // Snapshots still work, by status, which honours the mark as git does.
        fs::write(w.join("a.txt"), "changed\n").unwrap();
        fs::write(w.join("sub/b.txt"), "changed\n").unwrap();
        let snap = snapshot(&repo, &sig(), "s").unwrap();
        assert!(snap.created);
        assert_eq!(
            read_blob(&repo, snap.commit, "a.txt").as_deref(),
            Some("a\n")
        );
        assert_eq!(
            read_blob(&repo, snap.commit, "sub/b.txt").as_deref(),
            Some("changed\n")
        );
    }
}
