//! `handoff pull`: the task branch in a local worktree, and the agent's session
//! where the local CLI finds it, so the user can continue by hand.

use std::path::{Path, PathBuf};

use git2::{Repository, WorktreeAddOptions};

use super::task::TaskId;
use super::{Engine, EngineError};
use crate::agents::OutputFormat;
use crate::git::GitError;
use crate::sandbox::Sandbox;
use crate::untrusted::{EntryKind, UntrustedError, UntrustedTree, Visit, WalkLimits};

/// Where the workspace appears inside the sandbox; session files record it as cwd.
const WORKSPACE_IN_SANDBOX: &str = "/workspace";

/// What `pull` did.
#[derive(Debug, Clone)]
pub struct Pulled {
    pub worktree: PathBuf,
    /// False when the worktree was already there (pulled before).
    pub created: bool,
    pub branch: String,
    /// The session file placed for the local CLI, and its id.
    pub session: Option<(String, PathBuf)>,
    /// The shell command that continues the work locally.
    pub continue_command: String,
}

impl<S: Sandbox> Engine<S> {
    /// Checks out the task branch in a worktree (`dir`, or a sibling of the repository
    /// named `<repo>.handoff-<id>`) and, for Claude Code and Codex, copies the agent's
    /// session into the user's own CLI folders (`home` overrides `$HOME`).
    pub fn pull(
        &self,
        id: TaskId,
        dir: Option<&Path>,
        home: Option<&Path>,
    ) -> Result<Pulled, EngineError> {
        let task = self.store.load(id)?;
        if !task.state.is_terminal() {
            return Err(EngineError::Invalid(format!(
                "task #{id} is {}; pull it once it has ended (`handoff run --wait`, or `handoff cancel {id}`)",
                task.state
            )));
        }
        if task.head_commit.is_none() {
            return Err(EngineError::Invalid(format!(
                "task #{id} produced no branch to pull ({})",
                task.error.as_deref().unwrap_or(task.state.as_str())
            )));
        }
        let repo = self.repo()?;
        let worktree = match dir {
            Some(d) => absolute(d)?,
            None => {
                let name = self
                    .workdir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "repo".into());
                let parent = self.workdir.parent().unwrap_or(Path::new("/"));
                parent.join(format!("{name}.handoff-{id}"))
            }
        };
        let created = add_worktree(&repo, &format!("handoff-{id}"), &worktree, &task.branch)?;
        let worktree = worktree.canonicalize().unwrap_or(worktree);

        let home = match home {
            Some(h) => h.to_path_buf(),
            None => std::env::var_os("HOME")
                .map(PathBuf::from)
                .ok_or_else(|| EngineError::Invalid("HOME is not set".into()))?,
        };
        let format = self
            .config
            .agents
            .get(&task.agent)
            .and_then(|p| p.output_format());
        let agent_home = crate::untrusted::UntrustedTree::open(&self.store.home_path(id))
            .map_err(|e| EngineError::Invalid(e.to_string()))?;
        let cd = format!("cd {}", shell_quote(&worktree.display().to_string()));
        // The id comes from the agent's output: only a well-formed one names files.
        let sid = task
            .session_id
            .as_ref()
            .filter(|s| crate::agents::transcript::is_session_id(s));
        let (session, continue_command) = match (format, sid, &agent_home) {
            (Some(OutputFormat::ClaudeStreamJson), Some(sid), Some(agent_home)) => {
                let config_dir = std::env::var_os("CLAUDE_CONFIG_DIR")
                    .filter(|_| home_is_real(&home))
                    .map(PathBuf::from)
                    .unwrap_or_else(|| home.join(".claude"));
                let from_dir = format!(
                    ".claude/projects/{}",
                    claude_project_dir(WORKSPACE_IN_SANDBOX)
                );
                let to_dir = config_dir
                    .join("projects")
                    .join(claude_project_dir(&worktree.display().to_string()));
                let file = format!("{sid}.jsonl");
                let placed = place_session(
                    agent_home,
                    format!("{from_dir}/{file}").as_bytes(),
                    &to_dir.join(&file),
                    &worktree,
                )?;
                // Sub-agent transcripts and large tool results live beside it.
                copy_tree(
                    agent_home,
                    format!("{from_dir}/{sid}").as_bytes(),
                    &to_dir.join(sid),
                )?;
                match placed {
                    Some(p) => (
                        Some((sid.clone(), p)),
                        format!("{cd} && claude --resume {sid}"),
                    ),
                    None => (None, cd),
                }
            }
            (Some(OutputFormat::CodexExecJson), Some(sid), Some(agent_home)) => {
                let codex_home = std::env::var_os("CODEX_HOME")
                    .filter(|_| home_is_real(&home))
                    .map(PathBuf::from)
                    .unwrap_or_else(|| home.join(".codex"));
                let wanted = format!("{sid}.jsonl");
                let placed = match find_file(agent_home, b".codex/sessions", &|name| {
                    name.starts_with(b"rollout-") && name.ends_with(wanted.as_bytes())
                }) {
                    Some(from) => {
                        let rel = &from[b".codex/sessions/".len()..];
                        match crate::untrusted::join_below(&codex_home.join("sessions"), rel) {
                            Some(to) => place_session(agent_home, &from, &to, &worktree)?,
                            None => None,
                        }
                    }
                    None => None,
                };
                match placed {
                    Some(p) => (
                        Some((sid.clone(), p)),
                        format!("{cd} && codex resume {sid}"),
                    ),
                    None => (None, cd),
                }
            }
            _ => (None, cd),
        };
        Ok(Pulled {
            worktree,
            created,
            branch: task.branch,
            session,
            continue_command,
        })
    }
}

/// Whether `home` is the process's own HOME (then CLAUDE_CONFIG_DIR / CODEX_HOME apply).
fn home_is_real(home: &Path) -> bool {
    std::env::var_os("HOME").is_some_and(|h| Path::new(&h) == home)
}

fn absolute(p: &Path) -> Result<PathBuf, EngineError> {
    if p.is_absolute() {
        return Ok(p.to_path_buf());
    }
    let cwd = std::env::current_dir()
        .map_err(|e| EngineError::Invalid(format!("cannot read the current folder: {e}")))?;
    Ok(cwd.join(p))
}

/// Adds worktree `name` at `path` on `branch`; `Ok(false)` when it is already there.
fn add_worktree(
    repo: &Repository,
    name: &str,
    path: &Path,
    branch: &str,
) -> Result<bool, EngineError> {
    if let Ok(existing) = repo.find_worktree(name) {
        if existing.path().exists() {
            let there = existing.path().canonicalize().ok();
            if there.is_some() && there == path.canonicalize().ok() {
                return Ok(false);
            }
            return Err(EngineError::Invalid(format!(
                "this task is already pulled into {}; use that folder, or remove it \
                 (`git worktree remove {}`) to pull elsewhere",
                existing.path().display(),
                existing.path().display()
            )));
        }
        // Its folder was deleted by hand: forget it.
        let mut prune = git2::WorktreePruneOptions::new();
        prune.valid(true).working_tree(true);
        existing.prune(Some(&mut prune)).map_err(GitError::from)?;
    }
    if path.exists() {
        return Err(EngineError::Invalid(format!(
            "{} already exists; choose another folder with `--dir`",
            path.display()
        )));
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| GitError::Write {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    let reference = repo
        .find_branch(branch, git2::BranchType::Local)
        .map_err(|_| {
            EngineError::Invalid(format!(
                "branch {branch} is gone from this repository (deleted?); nothing to pull"
            ))
        })?
        .into_reference();
    let mut opts = WorktreeAddOptions::new();
    opts.reference(Some(&reference));
    repo.worktree(name, path, Some(&opts)).map_err(|e| {
        EngineError::Invalid(format!(
            "cannot check out {branch} in {}: {} (is the branch checked out elsewhere?)",
            path.display(),
            e.message()
        ))
    })?;
    Ok(true)
}

/// Claude Code's folder name for a project: the cwd with every character that is not
/// a letter or digit replaced by `-` (`/workspace` → `-workspace`).
pub fn claude_project_dir(cwd: &str) -> String {
    cwd.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// The largest session file handed over.
const MAX_SESSION_BYTES: u64 = 512 << 20;

/// Copies a session file out of the agent's HOME (read as hostile input), pointing
/// the `cwd` it records at the local worktree. `Ok(None)` when the agent left no
/// such file (or left something else there: a symlink, a FIFO).
fn place_session(
    home: &UntrustedTree,
    from: &[u8],
    to: &Path,
    worktree: &Path,
) -> Result<Option<PathBuf>, EngineError> {
    let bytes = match home.read_file(from, MAX_SESSION_BYTES) {
        Ok(b) => b,
        Err(UntrustedError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(None)
        }
        Err(UntrustedError::NotAFile { .. }) => return Ok(None),
        Err(e) => return Err(EngineError::Invalid(e.to_string())),
    };
    let text = String::from_utf8_lossy(&bytes);
    let local = worktree.display().to_string();
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        match serde_json::from_str::<serde_json::Value>(line) {
            Ok(mut value) => {
                rewrite_cwd(&mut value, &local);
                out.push_str(&value.to_string());
            }
            Err(_) => out.push_str(line),
        }
        out.push('\n');
    }
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(|source| GitError::Write {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    std::fs::write(to, out).map_err(|source| GitError::Write {
        path: to.to_path_buf(),
        source,
    })?;
    Ok(Some(to.to_path_buf()))
}

/// Every `"cwd"` under `/workspace` now names the same place under `local`.
fn rewrite_cwd(value: &mut serde_json::Value, local: &str) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if key == "cwd" {
                    if let Some(s) = v.as_str() {
                        if let Some(rest) = s.strip_prefix(WORKSPACE_IN_SANDBOX) {
                            if rest.is_empty() || rest.starts_with('/') {
                                *v = serde_json::Value::String(format!("{local}{rest}"));
                                continue;
                            }
                        }
                    }
                }
                rewrite_cwd(v, local);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| rewrite_cwd(v, local)),
        _ => {}
    }
}

/// The first regular file under `dir` of the agent's HOME whose name `matches`.
fn find_file(home: &UntrustedTree, dir: &[u8], matches: &dyn Fn(&[u8]) -> bool) -> Option<Vec<u8>> {
    let mut found = None;
    let _ = home.walk(WalkLimits::default(), |e| {
        if found.is_some() {
            return Visit::Skip;
        }
        let inside = e.path.starts_with(dir) && e.path.get(dir.len()) == Some(&b'/');
        let on_the_way = dir.starts_with(&e.path) && dir.get(e.path.len()) == Some(&b'/');
        match e.kind {
            EntryKind::Dir { .. } if inside || on_the_way || e.path == dir => Visit::Descend,
            EntryKind::File { .. } if inside => {
                let name = e.path.rsplit(|&b| b == b'/').next().unwrap_or(&e.path);
                if matches(name) {
                    found = Some(e.path.clone());
                }
                Visit::Skip
            }
            _ => Visit::Skip,
        }
    });
    found
}

/// Copies the regular files under `from` in the agent's HOME to `to` (the user's own
/// folder); symlinks and other kinds are left behind.
fn copy_tree(home: &UntrustedTree, from: &[u8], to: &Path) -> Result<(), EngineError> {
    let mut files = Vec::new();
    let _ = home.walk(WalkLimits::default(), |e| {
        let inside = e.path.starts_with(from) && e.path.get(from.len()) == Some(&b'/');
        let on_the_way = from.starts_with(&e.path) && from.get(e.path.len()) == Some(&b'/');
        match e.kind {
            EntryKind::Dir { .. } if inside || on_the_way || e.path == from => Visit::Descend,
            EntryKind::File { .. } if inside => {
                files.push(e.path.clone());
                Visit::Skip
            }
            _ => Visit::Skip,
        }
    });
    for rel in files {
        let Some(target) = crate::untrusted::join_below(to, &rel[from.len() + 1..]) else {
            continue;
        };
        let bytes = home
            .read_file(&rel, MAX_SESSION_BYTES)
            .map_err(|e| EngineError::Invalid(e.to_string()))?;
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|source| GitError::Write {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        std::fs::write(&target, bytes).map_err(|source| GitError::Write {
            path: target.clone(),
            source,
        })?;
    }
    Ok(())
}

fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:@".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_project_folders_replace_every_non_alphanumeric() {
        assert_eq!(claude_project_dir("/workspace"), "-workspace");
        assert_eq!(
            claude_project_dir("/home/ann/my.repo.handoff-3"),
            "-home-ann-my-repo-handoff-3"
        );
    }

    #[test]
    fn session_cwd_follows_the_worktree() {
        let mut v: serde_json::Value = serde_json::from_str(
            r#"{"cwd":"/workspace","payload":{"cwd":"/workspace/sub"},"other":"/workspace","cwd2":"/workspaces"}"#,
        )
        .unwrap();
        rewrite_cwd(&mut v, "/home/ann/wt");
        assert_eq!(v["cwd"], "/home/ann/wt");
        assert_eq!(v["payload"]["cwd"], "/home/ann/wt/sub");
        // Only `cwd` keys move; other mentions are the agent's words.
        assert_eq!(v["other"], "/workspace");
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("/a/b-c.d"), "/a/b-c.d");
        assert_eq!(shell_quote("/a b/it's"), r"'/a b/it'\''s'");
    }
}
