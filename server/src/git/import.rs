//! Bringing an agent's work home: commit whatever it left uncommitted, then fetch the
//! result into the user's repository as the task branch.

use std::path::Path;

use git2::{DiffFormat, DiffOptions, FetchOptions, Oid, Repository, Signature};

use super::snapshot::snapshot;
use super::GitError;

/// The ref inside the workspace that names the finished result, whatever branch the
/// agent ended up on.
const RESULT_REF: &str = "refs/handoff/result";

/// Commits every uncommitted change in the workspace on top of its HEAD (keeping the
/// agent's own commits) and returns the resulting head commit.
pub fn commit_leftovers(workspace: &Path, sig: &Signature, message: &str) -> Result<Oid, GitError> {
    let repo = Repository::open(workspace)?;
    let snap = snapshot(&repo, sig, message)?;
    repo.reference(RESULT_REF, snap.commit, true, "handoff result")?;
    Ok(snap.commit)
}

/// Fetches the workspace's result into `user_repo` as `refs/heads/<branch>`.
pub fn import_branch(
    user_repo: &Repository,
    workspace: &Path,
    branch: &str,
) -> Result<Oid, GitError> {
    let url = workspace.to_str().ok_or_else(|| GitError::NonUtf8Path {
        path: workspace.to_path_buf(),
    })?;
    let mut remote = user_repo.remote_anonymous(url)?;
    let refspec = format!("+{RESULT_REF}:refs/heads/{branch}");
    let mut opts = FetchOptions::new();
    opts.download_tags(git2::AutotagOption::None);
    remote.fetch(
        &[refspec.as_str()],
        Some(&mut opts),
        Some("handoff: import task result"),
    )?;
    let head = user_repo.refname_to_id(&format!("refs/heads/{branch}"))?;
    Ok(head)
}

/// Repository-relative paths that differ between two commits.
pub fn files_changed(repo: &Repository, base: Oid, head: Oid) -> Result<Vec<String>, GitError> {
    let diff = tree_diff(repo, base, head)?;
    let mut paths: Vec<String> = diff
        .deltas()
        .filter_map(|d| d.new_file().path().or_else(|| d.old_file().path()))
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    paths.dedup();
    Ok(paths)
}

/// The unified diff between two commits, byte for byte (CRLF and non-UTF-8 kept).
pub fn unified_diff(repo: &Repository, base: Oid, head: Oid) -> Result<Vec<u8>, GitError> {
    let diff = tree_diff(repo, base, head)?;
    let mut out = Vec::new();
    diff.print(DiffFormat::Patch, |_delta, _hunk, line| {
        if matches!(line.origin(), '+' | '-' | ' ') {
            out.push(line.origin() as u8);
        }
        out.extend_from_slice(line.content());
        true
    })?;
    Ok(out)
}

fn tree_diff(repo: &Repository, base: Oid, head: Oid) -> Result<git2::Diff<'_>, GitError> {
    let old = repo.find_commit(base)?.tree()?;
    let new = repo.find_commit(head)?.tree()?;
    let mut opts = DiffOptions::new();
    opts.show_binary(true);
    Ok(repo.diff_tree_to_tree(Some(&old), Some(&new), Some(&mut opts))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::test_support::{read_blob, repo_with};
    use crate::git::workspace;
    use std::fs;

    fn sig() -> Signature<'static> {
        Signature::now("agent", "agent@example.com").unwrap()
    }

    #[test]
    fn agent_commits_and_leftovers_come_home_as_a_branch() {
        let (_d, user) = repo_with(&[("a.txt", "a\n"), ("b.txt", "b\n")]);
        let base = user.head().unwrap().target().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let ws = tmp.path().join("ws");
        workspace::create(&user, &ws, "handoff/1-t", base).unwrap();

        // The agent commits one change itself and leaves another uncommitted.
        let wrepo = Repository::open(&ws).unwrap();
        fs::write(ws.join("a.txt"), "agent committed\n").unwrap();
        let mut idx = wrepo.index().unwrap();
        idx.add_path(Path::new("a.txt")).unwrap();
        let tree = wrepo.find_tree(idx.write_tree().unwrap()).unwrap();
        let parent = wrepo.find_commit(base).unwrap();
        let own = wrepo
            .commit(
                Some("HEAD"),
                &sig(),
                &sig(),
                "agent's own",
                &tree,
                &[&parent],
            )
            .unwrap();
        fs::write(ws.join("c.txt"), b"left over\r\n\xff").unwrap();
        fs::remove_file(ws.join("b.txt")).unwrap();

        let head = commit_leftovers(&ws, &sig(), "leftovers").unwrap();
        assert_eq!(wrepo.find_commit(head).unwrap().parent_id(0).unwrap(), own);

        let imported = import_branch(&user, &ws, "handoff/1-t").unwrap();
        assert_eq!(imported, head);
        assert_eq!(
            read_blob(&user, head, "a.txt").as_deref(),
            Some("agent committed\n")
        );
        assert_eq!(read_blob(&user, head, "b.txt"), None);
        assert_eq!(
            files_changed(&user, base, head).unwrap(),
            vec!["a.txt", "b.txt", "c.txt"]
        );
        // The workspace can go; the branch stands on its own objects.
        fs::remove_dir_all(&ws).unwrap();
        let user = Repository::open(user.path()).unwrap();
        assert!(user.find_commit(head).is_ok());
        let diff = unified_diff(&user, base, head).unwrap();
        let text = String::from_utf8_lossy(&diff);
        assert!(text.contains("+agent committed"), "{text}");
        assert!(text.contains("-b"), "{text}");
    }
}
