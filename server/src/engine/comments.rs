//! Review comments: what the user says about a finished task's changes, line by line,
//! kept as pending until they are sent together as the agent's next turn — each quoted
//! with its file, its lines and the change it is about.
//!
//! Comments live beside the task record (`comments.json`). A comment names a line of
//! the task's result (its head commit); the hunk covering that line (or the lines
//! around it) is quoted when the comment is made, so the turn that carries it says
//! exactly what the user looked at.

use serde::{Deserialize, Serialize};

use super::review::FileChange;
use super::store::write_atomic;
use super::task::{Task, TaskId};
use super::{Engine, EngineError};
use crate::diff::compute_hunks;
use crate::sandbox::Sandbox;

/// One comment of the user's on a task's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comment {
    /// Repository-relative path.
    pub file: String,
    /// 1-based lines of the result the comment is about, `line..=end_line`.
    pub line: u32,
    pub end_line: u32,
    pub text: String,
    /// The change (or the lines) quoted with the comment, as diff lines (`-`, `+`, ` `).
    pub quote: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// The turn that carried it to the agent; `None` while pending.
    pub sent_in_turn: Option<usize>,
}

/// The largest comment accepted.
const MAX_COMMENT_BYTES: usize = 16 << 10;

impl<S: Sandbox> Engine<S> {
    /// Every comment on a task, pending ones and sent ones, in the order made.
    pub fn comments(&self, id: TaskId) -> Result<Vec<Comment>, EngineError> {
        let path = self.store.task_dir(id).join("comments.json");
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|source| super::store::StoreError::Corrupt { path, source }.into()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(vec![]),
            Err(source) => Err(super::store::StoreError::Io {
                action: "read",
                path,
                source,
            }
            .into()),
        }
    }

    /// The comments not yet sent to the agent.
    pub fn pending_comments(&self, id: TaskId) -> Result<Vec<Comment>, EngineError> {
        Ok(self
            .comments(id)?
            .into_iter()
            .filter(|c| c.sent_in_turn.is_none())
            .collect())
    }

    fn save_comments(&self, id: TaskId, comments: &[Comment]) -> Result<(), EngineError> {
        let bytes = serde_json::to_vec_pretty(comments)
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        write_atomic(&self.store.task_dir(id).join("comments.json"), &bytes)?;
        Ok(())
    }

    /// Adds a pending comment on lines `line..=end_line` (1-based, of the task's result)
    /// of `file`, quoting the change there.
    pub async fn add_comment(
        &self,
        id: TaskId,
        file: &str,
        line: u32,
        end_line: u32,
        text: &str,
    ) -> Result<Comment, EngineError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(EngineError::Invalid(
                "the comment is empty; say what the agent should change".into(),
            ));
        }
        if text.len() > MAX_COMMENT_BYTES || text.contains('\0') {
            return Err(EngineError::Invalid(format!(
                "the comment is longer than {} KiB or holds a NUL byte",
                MAX_COMMENT_BYTES >> 10
            )));
        }
        let task = self.store.load(id)?;
        if task.head_commit.is_none() {
            return Err(EngineError::Invalid(format!(
                "task #{id} has no result to comment on yet ({})",
                task.state
            )));
        }
        if line == 0 || end_line < line {
            return Err(EngineError::Invalid(format!(
                "lines {line}–{end_line}: lines count from 1, the last not before the first"
            )));
        }
        let quote = self.quote(&task, file, line, end_line)?;
        let comment = Comment {
            file: file.to_string(),
            line,
            end_line,
            text: text.to_string(),
            quote,
            created_at: chrono::Utc::now(),
            sent_in_turn: None,
        };
        let _lock = self.lock().await?;
        let mut all = self.comments(id)?;
        all.push(comment.clone());
        self.save_comments(id, &all)?;
        Ok(comment)
    }

    /// Removes the pending comment number `n` (0-based among the pending ones).
    pub async fn remove_comment(&self, id: TaskId, n: usize) -> Result<(), EngineError> {
        let _lock = self.lock().await?;
        let mut all = self.comments(id)?;
        let Some(at) = all
            .iter()
            .enumerate()
            .filter(|(_, c)| c.sent_in_turn.is_none())
            .nth(n)
            .map(|(i, _)| i)
        else {
            return Err(EngineError::Invalid(format!(
                "task #{id} has no pending comment {}",
                n + 1
            )));
        };
        all.remove(at);
        self.save_comments(id, &all)
    }

    /// The change at `line..=end_line` of `file` in the task's result, as diff lines:
    /// the hunk(s) touching those lines, else the lines themselves.
    fn quote(
        &self,
        task: &Task,
        file: &str,
        line: u32,
        end_line: u32,
    ) -> Result<String, EngineError> {
        let FileChange::Text { base, result } = self.file_change(task, file)? else {
            return Ok(format!(
                "({file} is not text; comment on the file as a whole)"
            ));
        };
        let total = result.lines().count().max(1) as u32;
        if line > total {
            return Err(EngineError::Invalid(format!(
                "{file} has {total} lines in task #{}'s result; there is no line {line}",
                task.id
            )));
        }
        let (first, last) = (line as usize - 1, end_line.min(total) as usize);
        let mut quote = String::new();
        for hunk in compute_hunks(&base, &result) {
            let start = hunk.result_start;
            let end = start + hunk.new_lines.len().max(1);
            if end <= first || start >= last {
                continue;
            }
            for l in &hunk.base_lines {
                quote.push('-');
                quote.push_str(l.trim_end_matches(['\r', '\n']));
                quote.push('\n');
            }
            for l in &hunk.new_lines {
                quote.push('+');
                quote.push_str(l.trim_end_matches(['\r', '\n']));
                quote.push('\n');
            }
        }
        if quote.is_empty() {
            for l in result.lines().skip(first).take(last - first) {
                quote.push(' ');
                quote.push_str(l);
                quote.push('\n');
            }
        }
        Ok(quote)
    }

    /// The pending comments as the words of a turn, each quoted with its file, lines
    /// and change; `None` when there are none.
    pub fn comments_prompt(&self, id: TaskId) -> Result<Option<String>, EngineError> {
        let pending = self.pending_comments(id)?;
        if pending.is_empty() {
            return Ok(None);
        }
        let mut prompt = format!(
            "Review comments on your changes ({}). Address each one:\n",
            pending.len()
        );
        for (n, c) in pending.iter().enumerate() {
            let lines = if c.line == c.end_line {
                format!("line {}", c.line)
            } else {
                format!("lines {}-{}", c.line, c.end_line)
            };
            prompt.push_str(&format!(
                "\n{}. {} {lines}:\n```diff\n{}```\n{}\n",
                n + 1,
                c.file,
                c.quote,
                c.text
            ));
        }
        Ok(Some(prompt))
    }

    /// Marks the pending comments as sent with `turn`.
    pub(super) fn mark_comments_sent(&self, id: TaskId, turn: usize) -> Result<(), EngineError> {
        let mut all = self.comments(id)?;
        if all.iter().all(|c| c.sent_in_turn.is_some()) {
            return Ok(());
        }
        for c in all.iter_mut().filter(|c| c.sent_in_turn.is_none()) {
            c.sent_in_turn = Some(turn);
        }
        self.save_comments(id, &all)
    }
}
