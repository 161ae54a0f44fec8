//! The server's state, private, reached through named operations (ruff_server's
//! `Session`): the open documents with their versions, the negotiated position
//! encoding, the workspace folders, one [`Repo`] (engine and caches) per repository
//! the editor touched, the progress shown per task, and the background work the
//! server started.
//!
//! Handlers never take a lock here: every operation locks for a short, synchronous
//! section and hands back owned values (a [`Document`] is a cheap snapshot).

mod document;
mod repo;

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use tower_lsp_server::ls_types::{TextDocumentContentChangeEvent, Uri};

pub use document::{Document, RepoPath};
pub use repo::{PlacedHunk, Placement, Repo};

use super::convert::from_proto;
use super::error::LspError;
use crate::context::Language;
use crate::diff::PositionEncoding;
use crate::engine::task::TaskId;
use crate::engine::Engine;
use crate::sandbox::Sandbox;

/// Makes the sandbox each repository's engine runs on (Docker in `handoff lsp`, a fake
/// in the unit tests).
pub type SandboxFactory<S> = Arc<dyn Fn(&crate::config::Config) -> S + Send + Sync>;

/// Locks a mutex, recovering the data if a panicking thread poisoned it: the state
/// stays usable and the server keeps serving.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A task's work-done progress in the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    /// `window/workDoneProgress/create` sent, no answer yet.
    Creating,
    /// Begun: reports and the end may follow.
    Open,
}

/// What to send next for a task's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressStep {
    /// Create the progress, then begin it if [`Session::progress_created`] agrees.
    Begin,
    Report,
    End,
    /// Nothing (not begun yet, or ended).
    Nothing,
}

pub struct Session<S: Sandbox> {
    sandbox: SandboxFactory<S>,
    encoding: Mutex<PositionEncoding>,
    roots: Mutex<Vec<PathBuf>>,
    documents: Mutex<HashMap<Uri, Document>>,
    repos: Mutex<HashMap<PathBuf, Arc<Repo<S>>>>,
    progress: Mutex<HashMap<(PathBuf, TaskId), Progress>>,
    background: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// The configurations (repository and content hash) the user was asked to trust:
    /// changed content is asked about again.
    trust_asked: Mutex<std::collections::HashSet<(PathBuf, String)>>,
}

impl<S: Sandbox> Session<S> {
    pub fn new(sandbox: SandboxFactory<S>) -> Session<S> {
        Session {
            sandbox,
            encoding: Mutex::new(PositionEncoding::Utf16),
            roots: Mutex::default(),
            documents: Mutex::default(),
            repos: Mutex::default(),
            progress: Mutex::default(),
            background: Mutex::default(),
            trust_asked: Mutex::default(),
        }
    }

    /// Takes note of what `initialize` settled.
    pub fn initialize(&self, encoding: PositionEncoding, roots: Vec<PathBuf>) {
        *lock(&self.encoding) = encoding;
        *lock(&self.roots) = roots;
    }

    pub fn encoding(&self) -> PositionEncoding {
        *lock(&self.encoding)
    }

    pub fn roots(&self) -> Vec<PathBuf> {
        lock(&self.roots).clone()
    }

    // --- documents ------------------------------------------------------------------

    pub fn open_document(&self, uri: Uri, text: String, version: i32, language_id: &str) {
        let location = from_proto::path_from_uri(&uri).and_then(|path| self.locate(&path));
        let language = Language::detect(
            Some(language_id),
            location
                .as_ref()
                .map(|l| l.rel.as_str())
                .unwrap_or(uri.as_str()),
        );
        tracing::debug!(uri = uri.as_str(), ?language, ?location, "opened");
        if let Some(repo) = location.as_ref().and_then(|l| self.repo_at(&l.workdir)) {
            // A reopened document may come back with an old version number.
            repo.invalidate();
        }
        let document = Document::new(uri.clone(), text, version, language, location);
        lock(&self.documents).insert(uri, document);
    }

    /// Applies a `didChange`; false for a document that is not open.
    pub fn change_document(
        &self,
        uri: &Uri,
        version: i32,
        changes: Vec<TextDocumentContentChangeEvent>,
    ) -> bool {
        let encoding = self.encoding();
        let mut documents = lock(&self.documents);
        let Some(doc) = documents.get_mut(uri) else {
            return false;
        };
        let text = from_proto::apply_changes(doc.text.to_string(), changes, encoding);
        doc.set_text(text, version);
        true
    }

    pub fn close_document(&self, uri: &Uri) {
        lock(&self.documents).remove(uri);
    }

    /// The current version of an open document.
    pub fn document(&self, uri: &Uri) -> Result<Document, LspError> {
        lock(&self.documents).get(uri).cloned().ok_or_else(|| {
            LspError::not_found(format!("{} is not open in the editor", uri.as_str()))
        })
    }

    pub fn open_documents(&self) -> Vec<Uri> {
        lock(&self.documents).keys().cloned().collect()
    }

    /// The open documents of the repository at `workdir`.
    pub fn documents_in(&self, workdir: &Path) -> Vec<Uri> {
        lock(&self.documents)
            .values()
            .filter(|d| d.location.as_ref().is_some_and(|l| l.workdir == workdir))
            .map(|d| d.uri.clone())
            .collect()
    }

    /// Repository-relative paths of the open documents.
    pub fn open_paths(&self) -> Vec<String> {
        lock(&self.documents)
            .values()
            .filter_map(|d| d.location.as_ref().map(|l| l.rel.clone()))
            .collect()
    }

    /// The pending hunks of finished tasks in `doc` to show, placed in its current
    /// text.
    pub fn placed_hunks(&self, doc: &Document) -> Arc<Vec<PlacedHunk>> {
        self.placement(doc).hunks
    }

    /// Where the pending hunks of finished tasks stand in `doc`.
    pub fn placement(&self, doc: &Document) -> Placement {
        let Some(location) = &doc.location else {
            return Placement::default();
        };
        match self.repo_at(&location.workdir) {
            Some(repo) => repo.placement(&location.rel, doc.version, &doc.text),
            None => Placement::default(),
        }
    }

    // --- repositories ---------------------------------------------------------------

    /// The repository containing `path`, opened once per server.
    pub fn repo_for_path(&self, path: &Path) -> Result<Arc<Repo<S>>, LspError> {
        // A file not written yet (one an agent created, opened for review) belongs to
        // the repository of the folder it would be in.
        let existing = path.ancestors().find(|p| p.exists()).unwrap_or(path);
        let (workdir, _) =
            Engine::<S>::find_repo(existing).map_err(|e| LspError::not_found(e.to_string()))?;
        if let Some(repo) = self.repo_at(&workdir) {
            return Ok(repo);
        }
        let engine = Engine::open_with(&workdir, |config| (self.sandbox)(config))?;
        let repo = Arc::new(Repo::new(engine));
        Ok(lock(&self.repos).entry(workdir).or_insert(repo).clone())
    }

    /// The repository of `uri`, or of the first workspace folder.
    pub fn repo_for_uri(&self, uri: Option<&Uri>) -> Result<Arc<Repo<S>>, LspError> {
        let path = match uri {
            Some(uri) => {
                let path = from_proto::path_from_uri(uri).ok_or_else(|| {
                    LspError::not_found(format!(
                        "{} is not a file on disk; save it inside a git repository first",
                        uri.as_str()
                    ))
                })?;
                self.inside_workspace(&path)?;
                path
            }
            None => self.roots().into_iter().next().ok_or_else(|| {
                LspError::not_found(
                    "no workspace folder is open; open a folder inside a git repository",
                )
            })?,
        };
        self.repo_for_path(&path)
    }

    /// Refuses a path outside the client's workspace folders, or one that climbs out
    /// with `..`: commands act on what the user opened, nothing else on the machine.
    pub fn inside_workspace(&self, path: &Path) -> Result<(), LspError> {
        if path
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(LspError::invalid(format!(
                "{} contains `..`; Handoff acts only on files inside the workspace folders",
                path.display()
            )));
        }
        let roots = self.roots();
        if roots.is_empty() {
            return Ok(());
        }
        let real = |p: &Path| {
            p.canonicalize()
                .ok()
                .or_else(|| real_path(p))
                .unwrap_or_else(|| p.to_path_buf())
        };
        let path = real(path);
        if roots.iter().any(|root| path.starts_with(real(root))) {
            return Ok(());
        }
        Err(LspError::invalid(format!(
            "{} is outside the workspace folders ({}); Handoff acts only on files inside them",
            path.display(),
            roots
                .iter()
                .map(|r| r.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }

    /// The repository of an open document.
    pub fn repo_of(&self, doc: &Document) -> Result<Arc<Repo<S>>, LspError> {
        match doc.location.as_ref().and_then(|l| self.repo_at(&l.workdir)) {
            Some(repo) => Ok(repo),
            None => {
                doc.rel()?;
                self.repo_for_uri(Some(&doc.uri))
            }
        }
    }

    /// Drops the repository at `workdir`: its next use opens it again (reading its
    /// configuration anew).
    pub fn forget_repo(&self, workdir: &Path) {
        lock(&self.repos).remove(workdir);
    }

    /// True the first time it is asked for `workdir` with configuration content
    /// `sha256`: whether to ask the user about trusting it.
    pub fn first_trust_question(&self, workdir: &Path, sha256: &str) -> bool {
        lock(&self.trust_asked).insert((workdir.to_path_buf(), sha256.to_string()))
    }

    /// `repo`, opened again when its configuration changed on disk since it was read
    /// (an edit, a `git pull`): trust is decided on the content as it is now, so a
    /// trusted repository whose files then change is untrusted until asked again.
    pub fn with_current_config(&self, repo: Arc<Repo<S>>) -> Result<Arc<Repo<S>>, LspError> {
        let Ok(now) = crate::trust::config_hash(repo.workdir()) else {
            return Ok(repo);
        };
        if now.as_deref() == repo.engine().config().trust.sha256() {
            return Ok(repo);
        }
        tracing::info!(repository = %repo.name(), "the repository's configuration changed: reading it again");
        let workdir = repo.workdir().to_path_buf();
        {
            let mut repos = lock(&self.repos);
            // Only the entry this repo is: another request may have opened it anew.
            if repos.get(&workdir).is_some_and(|r| Arc::ptr_eq(r, &repo)) {
                repos.remove(&workdir);
            }
        }
        self.repo_for_path(&workdir)
    }

    /// The repository at `workdir`, if the server has it open.
    pub fn repo_at(&self, workdir: &Path) -> Option<Arc<Repo<S>>> {
        lock(&self.repos).get(workdir).cloned()
    }

    pub fn repos(&self) -> Vec<Arc<Repo<S>>> {
        lock(&self.repos).values().cloned().collect()
    }

    /// The repository and relative path of a file, if it is inside a usable repository.
    fn locate(&self, path: &Path) -> Option<RepoPath> {
        self.inside_workspace(path).ok()?;
        let repo = self.repo_for_path(path).ok()?;
        let workdir = repo.workdir().canonicalize().ok()?;
        let full = real_path(path)?;
        let rel = full.strip_prefix(&workdir).ok()?;
        Some(RepoPath {
            workdir: repo.workdir().to_path_buf(),
            rel: rel.to_str()?.replace(std::path::MAIN_SEPARATOR, "/"),
        })
    }

    // --- progress -------------------------------------------------------------------

    /// Decides the next progress message for a task that is `ended` or not.
    pub fn progress_step(&self, workdir: &Path, task: TaskId, ended: bool) -> ProgressStep {
        let key = (workdir.to_path_buf(), task);
        let mut progress = lock(&self.progress);
        match (progress.get(&key).copied(), ended) {
            (Some(Progress::Open), true) => {
                progress.remove(&key);
                ProgressStep::End
            }
            // Not begun: the creator sees it gone and never begins it.
            (Some(Progress::Creating), true) => {
                progress.remove(&key);
                ProgressStep::Nothing
            }
            (None, true) | (Some(Progress::Creating), false) => ProgressStep::Nothing,
            (Some(Progress::Open), false) => ProgressStep::Report,
            (None, false) => {
                progress.insert(key, Progress::Creating);
                ProgressStep::Begin
            }
        }
    }

    /// The client created the progress (`created`) or not; true if it is to be begun.
    pub fn progress_created(&self, workdir: &Path, task: TaskId, created: bool) -> bool {
        let key = (workdir.to_path_buf(), task);
        let mut progress = lock(&self.progress);
        match progress.get(&key) {
            Some(Progress::Creating) if created => {
                progress.insert(key, Progress::Open);
                true
            }
            Some(Progress::Creating) => {
                progress.remove(&key);
                false
            }
            _ => false,
        }
    }

    // --- background work ------------------------------------------------------------

    /// Runs `work` in the background, owned by the session: it stops at shutdown.
    pub fn spawn(&self, work: impl Future<Output = ()> + Send + 'static) {
        let mut background = lock(&self.background);
        background.retain(|h| !h.is_finished());
        background.push(tokio::spawn(work));
    }

    /// Stops all background work.
    pub fn shutdown(&self) {
        for handle in lock(&self.background).drain(..) {
            handle.abort();
        }
    }
}

/// `path` with its deepest existing folder made canonical and the rest (names that do
/// not exist yet: a file an agent created, in folders it created) joined as they are.
/// The path itself is never resolved when it is a symlink: a document is named by
/// where it is, not by what it points to. `None` for a path with `..` or no existing
/// ancestor.
fn real_path(path: &Path) -> Option<PathBuf> {
    use std::path::Component;
    if path.components().any(|c| matches!(c, Component::ParentDir)) {
        return None;
    }
    let name = path.file_name()?;
    let mut missing = vec![name];
    let mut dir = path.parent()?;
    loop {
        if let Ok(real) = dir.canonicalize() {
            let mut full = real;
            full.extend(missing.iter().rev());
            return Some(full);
        }
        missing.push(dir.file_name()?);
        dir = dir.parent()?;
    }
}
