//! Reviewing a finished task hunk by hunk: which hunks a task proposes for a file,
//! and which of them the user has already accepted or rejected.
//!
//! Hunks are computed from the task's base and head commits, so they are the same
//! every time; the user's decisions are stored beside the task record
//! (`review.json`), so they survive restarts of the editor and the server.

use std::collections::BTreeMap;
use std::path::Path;

use git2::{Oid, Repository};
use serde::{Deserialize, Serialize};

use super::store::{write_atomic_unsynced, StoreError};
use super::task::{Task, TaskId};
use super::{Engine, EngineError};
use crate::diff::{compute_hunks, Hunk};
use crate::git::GitError;
use crate::sandbox::Sandbox;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Resolution {
    Accepted,
    Rejected,
}

/// The user's decisions on one task: path → hunk index → decision.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReviewState {
    pub resolved: BTreeMap<String, BTreeMap<usize, Resolution>>,
}

/// What a task did to one file.
#[derive(Debug, Clone, PartialEq)]
pub enum FileChange {
    /// Both sides are text: review hunk by hunk.
    Text { base: String, result: String },
    /// One side is not UTF-8 text (or too large to show inline): review as a diff.
    Binary,
}

/// Files larger than this are reviewed as a whole diff, not inline.
const MAX_INLINE_BYTES: usize = 8 << 20;

impl<S: Sandbox> Engine<S> {
    /// Fails with a message saying what to do when the task's branch is gone.
    pub fn check_branch(&self, task: &Task) -> Result<(), EngineError> {
        let head = task.head_commit.as_deref().ok_or_else(|| {
            EngineError::Invalid(format!(
                "task #{} has no result yet ({})",
                task.id, task.state
            ))
        })?;
        let repo = Repository::open(self.workdir()).map_err(GitError::from)?;
        if repo
            .find_reference(&format!("refs/heads/{}", task.branch))
            .is_err()
        {
            return Err(EngineError::Invalid(format!(
                "the branch {} of task #{} was deleted, so its changes are no longer available; \
                 restore the branch (git branch {} {head}) to review them",
                task.branch, task.id, task.branch
            )));
        }
        Ok(())
    }

    /// Base and result of `path` (repository-relative) in a finished task.
    pub fn file_change(&self, task: &Task, path: &str) -> Result<FileChange, EngineError> {
        self.check_branch(task)?;
        let head = task.head_commit.as_deref().unwrap_or_default();
        let repo = Repository::open(self.workdir()).map_err(GitError::from)?;
        let base = blob_at(&repo, &task.base_commit, path)?;
        let result = blob_at(&repo, head, path)?;
        let text = |b: Option<Vec<u8>>| match b {
            None => Some(String::new()),
            Some(bytes) if bytes.len() <= MAX_INLINE_BYTES => String::from_utf8(bytes).ok(),
            Some(_) => None,
        };
        Ok(match (text(base), text(result)) {
            (Some(base), Some(result)) => FileChange::Text { base, result },
            _ => FileChange::Binary,
        })
    }

    /// Hunks of `path` the user has not decided on yet.
    pub fn pending_hunks(&self, task: &Task, path: &str) -> Result<Vec<Hunk>, EngineError> {
        let FileChange::Text { base, result } = self.file_change(task, path)? else {
            return Ok(vec![]);
        };
        let review = self.review(task.id)?;
        let decided = review.resolved.get(path);
        Ok(compute_hunks(&base, &result)
            .into_iter()
            .filter(|h| decided.is_none_or(|d| !d.contains_key(&h.index)))
            .collect())
    }

    pub fn review(&self, id: TaskId) -> Result<ReviewState, EngineError> {
        let path = self.store().task_dir(id).join("review.json");
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|source| StoreError::Corrupt { path, source }.into()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ReviewState::default()),
            Err(source) => Err(StoreError::Io {
                action: "read",
                path,
                source,
            }
            .into()),
        }
    }

    /// Records the user's decision on hunks of `path`.
    pub async fn resolve_hunks(
        &self,
        id: TaskId,
        path: &str,
        hunks: &[usize],
        resolution: Resolution,
    ) -> Result<(), EngineError> {
        let _lock = self.lock().await?;
        let mut review = self.review(id)?;
        let entry = review.resolved.entry(path.to_string()).or_default();
        for &h in hunks {
            entry.insert(h, resolution);
        }
        let bytes =
            serde_json::to_vec_pretty(&review).map_err(|e| EngineError::Internal(e.to_string()))?;
        // A lost decision only brings a hunk back for review; no fsync on this path.
        write_atomic_unsynced(&self.store().task_dir(id).join("review.json"), &bytes)?;
        Ok(())
    }
}

fn blob_at(repo: &Repository, commit: &str, path: &str) -> Result<Option<Vec<u8>>, GitError> {
    let commit = repo.find_commit(Oid::from_str(commit)?)?;
    let tree = commit.tree()?;
    match tree.get_path(Path::new(path)) {
        Ok(entry) => match entry.to_object(repo)?.into_blob() {
            Ok(blob) => Ok(Some(blob.content().to_vec())),
            // A folder or submodule at this path: nothing to show inline.
            Err(_) => Ok(None),
        },
        Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}
