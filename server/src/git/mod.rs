//! Everything Handoff does with git, through libgit2: snapshots of the user's working
//! tree, the layers of the agent's workspace (a shared base checkout and the task's
//! start layer), and importing the result as a branch.
//!
//! Nothing here knows about containers or front-ends.

pub mod base;
pub mod import;
pub mod layer;
pub mod scan;
pub mod snapshot;
pub mod split_index;
pub mod tree_edit;

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error(
        "{path} is not inside a git repository; run handoff from a repository (or `git init` one)"
    )]
    NotARepository { path: PathBuf },
    #[error("the repository at {path} has no commits yet; commit something first, the agent starts from a commit")]
    NoCommits { path: PathBuf },
    #[error("the repository at {path} is bare; handoff needs a working tree")]
    Bare { path: PathBuf },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("path {path} is not UTF-8")]
    NonUtf8Path { path: PathBuf },
    /// Something the agent left could not be read safely.
    #[error("{0}")]
    Untrusted(String),
    #[error("git: {0}")]
    Git(#[from] git2::Error),
}

/// Process-wide libgit2 settings. Workspaces are owned by the agent's uid, which may
/// differ from the front-end's (root running tasks for another uid), and libgit2
/// would refuse to open them as "dubious ownership"; Handoff only opens repositories
/// the user pointed it at and the workspaces it made itself.
pub fn init() {
    // SAFETY: called before any other libgit2 use in the process, from one thread.
    unsafe {
        let _ = git2::opts::set_verify_owner_validation(false);
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use std::path::Path;

    use git2::{Oid, Repository, Signature};
    use tempfile::TempDir;

    /// A repository in a temp dir with `files` committed.
    /// This process's uid and gid.
    pub fn me() -> (u32, u32) {
        (
            rustix::process::geteuid().as_raw(),
            rustix::process::getegid().as_raw(),
        )
    }

    pub fn repo_with(files: &[(&str, &str)]) -> (TempDir, Repository) {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        for (path, content) in files {
            let full = dir.path().join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, content).unwrap();
        }
        commit_all(&repo, "initial");
        (dir, repo)
    }

    pub fn commit_all(repo: &Repository, message: &str) -> Oid {
        let mut idx = repo.index().unwrap();
        idx.add_all(["*"], git2::IndexAddOption::DEFAULT, None)
            .unwrap();
        idx.write().unwrap();
        let tree = repo.find_tree(idx.write_tree().unwrap()).unwrap();
        let sig = Signature::now("t", "t@example.com").unwrap();
        let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
            .unwrap()
    }

    /// git itself (the CLI) run in `dir`; its output, or a panic with its stderr.
    pub fn git_cli(dir: &Path, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn read_blob(repo: &Repository, commit: Oid, path: &str) -> Option<String> {
        let tree = repo.find_commit(commit).unwrap().tree().unwrap();
        let entry = tree.get_path(Path::new(path)).ok()?;
        let blob = repo.find_blob(entry.id()).unwrap();
        Some(String::from_utf8_lossy(blob.content()).into_owned())
    }
}
