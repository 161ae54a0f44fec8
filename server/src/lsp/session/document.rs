//! An open document: its text at the client's version, where it lives, and the
//! prompts built from it.

use std::path::PathBuf;
use std::sync::Arc;

use tower_lsp_server::ls_types::Uri;

use crate::context::{self, Language, LineRange, PromptRequest, Target};
use crate::diff::{LineIndex, PositionEncoding};
use crate::lsp::convert::from_proto;
use crate::lsp::error::LspError;

/// Where a document lives in a repository.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RepoPath {
    pub workdir: PathBuf,
    /// Repository-relative, with `/` separators.
    pub rel: String,
}

/// One version of an open document. Cheap to clone: the text and its line index are
/// shared, so a handler works on its own copy without holding the session.
#[derive(Debug, Clone)]
pub struct Document {
    pub uri: Uri,
    pub version: i32,
    pub text: Arc<str>,
    pub index: Arc<LineIndex>,
    pub language: Language,
    /// `None` for unsaved buffers and files outside any git repository.
    pub location: Option<RepoPath>,
}

impl Document {
    pub fn new(
        uri: Uri,
        text: String,
        version: i32,
        language: Language,
        location: Option<RepoPath>,
    ) -> Document {
        let index = Arc::new(LineIndex::new(&text));
        Document {
            uri,
            version,
            text: text.into(),
            index,
            language,
            location,
        }
    }

    pub fn set_text(&mut self, text: String, version: i32) {
        self.index = Arc::new(LineIndex::new(&text));
        self.text = text.into();
        self.version = version;
    }

    /// The path in its repository, or why the document cannot be delegated from.
    pub fn rel(&self) -> Result<&str, LspError> {
        if let Some(l) = &self.location {
            return Ok(&l.rel);
        }
        Err(LspError::not_found(match from_proto::path_from_uri(&self.uri) {
            None => "this buffer is not saved to a file; save it inside a git repository to delegate from it".to_string(),
            Some(p) if !p.exists() => format!(
                "{} is not saved yet; write it to disk (inside a git repository) to delegate from it",
                p.display()
            ),
            Some(p) => format!(
                "{} is not inside a git repository (or the repository's .handoff.toml is invalid; run `handoff doctor`)",
                p.display()
            ),
        }))
    }

    /// The path in its repository of a document that is on disk: what a task can be
    /// delegated from (the task's snapshot holds the files on disk). A file not
    /// written yet has a path (its changes can be reviewed) but nothing to delegate.
    pub fn saved_rel(&self) -> Result<&str, LspError> {
        let rel = self.rel()?;
        match from_proto::path_from_uri(&self.uri) {
            Some(p) if p.symlink_metadata().is_err() => Err(LspError::not_found(format!(
                "{} is not saved yet; write it to disk (inside a git repository) to delegate from it",
                p.display()
            ))),
            _ => Ok(rel),
        }
    }

    fn rel_or_unsaved(&self) -> &str {
        self.location
            .as_ref()
            .map(|l| l.rel.as_str())
            .unwrap_or("(unsaved file)")
    }

    /// The prompt and title for the TODO on `line`.
    pub fn todo_prompt(&self, line: usize) -> Result<(String, String), String> {
        let todo = context::find_todo(&self.text, line, self.language)
            .ok_or_else(|| format!("there is no TODO comment on line {} any more", line + 1))?;
        let code = context::code_context(&self.text, todo.lines, self.language);
        let instruction = todo.description();
        let request = PromptRequest {
            path: self.rel_or_unsaved(),
            language: self.language,
            instruction: &instruction,
            target: Target::Todo(&todo),
            context: Some(&code),
        };
        Ok((context::build_prompt(&request), context::title(&request)))
    }

    /// The prompt, title and first line for bytes `start..end` with the user's
    /// instruction.
    pub fn selection_prompt(
        &self,
        start: usize,
        end: usize,
        instruction: &str,
    ) -> (String, String, usize) {
        let line_of = |offset| self.index.position(offset, PositionEncoding::Utf8).line as usize;
        let (start_line, end_line) = (line_of(start), line_of(end));
        let lines = LineRange::new(start_line, end_line.max(start_line));
        let code = context::code_context(&self.text, lines, self.language);
        let text = &self.text[start.min(self.text.len())..end.min(self.text.len())];
        let request = PromptRequest {
            path: self.rel_or_unsaved(),
            language: self.language,
            instruction,
            target: Target::Selection { lines, text },
            context: Some(&code),
        };
        (
            context::build_prompt(&request),
            context::title(&request),
            start_line,
        )
    }
}
