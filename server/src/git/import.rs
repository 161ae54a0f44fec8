//! Bringing an agent's work home without trusting anything it wrote.
//!
//! The agent's writes arrive as an overlay's upper folder: exactly the paths it
//! created, changed or deleted. They are read through [`crate::untrusted`] (no
//! symlink followed, no FIFO opened, every read bounded) and applied to the tree the
//! task started from, in an index held in memory and objects written into the user's
//! repository by the host — never by opening the agent's repository with its own
//! configuration, worktree or object pointers.
//!
//! The agent's own commits are kept when they can be verified: its `HEAD` and refs
//! are read as text and validated, its loose objects and packs are copied into a
//! quarantine repository this module makes (libgit2 checks every object's hash), and
//! its commits are taken only if they descend from the start commit, fit the size
//! limits, and are complete. Otherwise the files alone come home, and the result
//! says why the commits did not.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use git2::{DiffFormat, DiffOptions, ObjectType, Oid, Repository, Signature, Tree};

use super::tree_edit::TreeEdits;
use ignore::gitignore::{Gitignore, GitignoreBuilder};

use super::GitError;
use crate::untrusted::{EntryKind, UntrustedError, UntrustedTree, Visit, WalkLimits};

/// Bounds on what one task may bring into the user's repository.
#[derive(Debug, Clone, Copy)]
pub struct ImportLimits {
    /// Bytes of new file content in all; files past it are reported, not imported.
    pub max_total_bytes: u64,
    /// Paths the agent may leave (files, folders, deletions).
    pub max_entries: usize,
    /// Commits of the agent's own that are kept.
    pub max_agent_commits: usize,
}

impl Default for ImportLimits {
    fn default() -> Self {
        ImportLimits {
            max_total_bytes: 100 << 20,
            max_entries: 500_000,
            max_agent_commits: 1000,
        }
    }
}

/// A path the agent left that did not come home, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Skipped {
    pub path: String,
    pub reason: String,
}

/// The result of an import.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The task branch's new head.
    pub head: Oid,
    /// Commits of the agent's own that were kept.
    pub agent_commits: usize,
    pub skipped: Vec<Skipped>,
    /// Why the agent's own commits were not kept, when it made some.
    pub commits_dropped: Option<String>,
}

/// What to import and where to.
pub struct ImportRequest<'a> {
    /// The overlay's upper folder: everything the agent wrote under /workspace.
    pub upper: &'a Path,
    /// The commit the turn started from (the agent's `HEAD` at the start).
    pub start: Oid,
    /// The task branch, `handoff/<id>-<slug>`, set to the result.
    pub branch: &'a str,
    /// A folder of the host's for the quarantine repository; emptied and reused.
    pub scratch: &'a Path,
    /// Author and committer of the commit that holds what the agent left uncommitted.
    pub signature: &'a Signature<'a>,
    pub message: &'a str,
    pub limits: ImportLimits,
    /// More gitignore patterns for new paths: what the agent's CLI keeps for itself.
    pub ignore: &'a [String],
}

const GIT_DIR: &[u8] = b".git";

pub fn import_result(user: &Repository, req: &ImportRequest<'_>) -> Result<Imported, GitError> {
    let start = user.find_commit(req.start)?;
    let start_tree = start.tree()?;
    let upper = UntrustedTree::open(req.upper).map_err(untrusted)?;
    let mut skipped = Vec::new();
    let (content_tree, git_changed) = match &upper {
        Some(upper) => content_of(user, upper, &start_tree, req, &mut skipped)?,
        None => (start_tree.id(), false),
    };
    let mut parent = req.start;
    let mut agent_commits = 0;
    let mut commits_dropped = None;
    if let (Some(upper), true) = (&upper, git_changed) {
        match agent_commits_of(user, upper, req) {
            Ok(None) => {}
            Ok(Some((head, n))) => {
                parent = head;
                agent_commits = n;
            }
            Err(why) => commits_dropped = Some(why),
        }
    }
    let parent_commit = user.find_commit(parent)?;
    let head = if parent_commit.tree_id() == content_tree {
        parent
    } else {
        let tree = user.find_tree(content_tree)?;
        user.commit(
            None,
            req.signature,
            req.signature,
            req.message,
            &tree,
            &[&parent_commit],
        )?
    };
    user.reference(
        &format!("refs/heads/{}", req.branch),
        head,
        true,
        "handoff: import task result",
    )?;
    let _ = crate::untrusted::remove_tree(req.scratch);
    Ok(Imported {
        head,
        agent_commits,
        skipped,
        commits_dropped,
    })
}

/// Why copying a file of `size` bytes into the object database failed. git2's writer
/// says only "Write error"; when the disk is what ran out, say so, and which.
fn write_failure(e: std::io::Error, user: &Repository, size: u64) -> String {
    if e.raw_os_error().is_some() {
        // Reading the agent's file failed, not writing.
        return e.to_string();
    }
    let objects = user.path().join("objects");
    match rustix::fs::statvfs(&objects) {
        Ok(fs) if fs.f_bavail.saturating_mul(fs.f_frsize) < size => format!(
            "no space left on the disk of {} for this {} MiB file",
            objects.display(),
            size.div_ceil(1 << 20)
        ),
        _ => e.to_string(),
    }
}

fn untrusted(e: UntrustedError) -> GitError {
    GitError::Untrusted(e.to_string())
}

fn path_of(rel: &[u8]) -> &Path {
    Path::new(std::ffi::OsStr::from_bytes(rel))
}

fn lossy(rel: &[u8]) -> String {
    String::from_utf8_lossy(rel).into_owned()
}

/// The tree of what the workspace holds now: the start tree with the upper folder's
/// changes applied. Returns it and whether the agent touched `.git`.
fn content_of(
    user: &Repository,
    upper: &UntrustedTree,
    start_tree: &Tree<'_>,
    req: &ImportRequest<'_>,
    skipped: &mut Vec<Skipped>,
) -> Result<(Oid, bool), GitError> {
    let limits = &req.limits;
    let mut edits = TreeEdits::new();
    let odb = user.odb()?;
    let mut ignores = Ignores::new(user, upper, start_tree, req.ignore);
    let mut budget = limits.max_total_bytes;
    let mut git_changed = false;
    let mut failure: Option<GitError> = None;
    let tracked = |rel: &[u8]| -> Option<i32> {
        start_tree.get_path(path_of(rel)).ok().map(|e| e.filemode())
    };
    let walk_limits = WalkLimits {
        max_entries: limits.max_entries,
        ..WalkLimits::default()
    };
    let walked = upper.walk(walk_limits, |entry| {
        if failure.is_some() {
            return Visit::Skip;
        }
        let rel = entry.path.as_slice();
        let name = rel.rsplit(|&b| b == b'/').next().unwrap_or(rel);
        if name == GIT_DIR {
            if rel == GIT_DIR {
                git_changed = true;
            }
            // A repository's own folder is never content, at any depth.
            return Visit::Skip;
        }
        let was = tracked(rel);
        let result = (|| -> Result<Visit, GitError> {
            match &entry.kind {
                EntryKind::Dir { opaque } => {
                    match was {
                        Some(0o040000) if *opaque => edits.remove(rel),
                        Some(0o040000) => {}
                        Some(_) => edits.remove(rel),
                        None => {
                            if ignores.is_ignored(rel, true) {
                                return Ok(Visit::Skip);
                            }
                            if upper.kind_of(&[rel, b"/.git"].concat()).is_some() {
                                skipped.push(Skipped {
                                    path: lossy(rel),
                                    reason:
                                        "a nested git repository; git keeps those out of a commit"
                                            .into(),
                                });
                                return Ok(Visit::Skip);
                            }
                        }
                    }
                    ignores.enter(rel);
                    Ok(Visit::Descend)
                }
                EntryKind::Whiteout => {
                    if was.is_some() {
                        edits.remove(rel);
                    }
                    Ok(Visit::Skip)
                }
                EntryKind::File { size, executable } => {
                    if was.is_none() && ignores.is_ignored(rel, false) {
                        return Ok(Visit::Skip);
                    }
                    if *size > budget {
                        skipped.push(Skipped {
                            path: lossy(rel),
                            reason: format!(
                                "{} MiB, more than the {} MiB left of the task's import limit",
                                size >> 20,
                                budget >> 20
                            ),
                        });
                        return Ok(Visit::Skip);
                    }
                    let (mut file, size) = upper.open_file(rel).map_err(untrusted)?;
                    let mut writer = odb.writer(size as usize, ObjectType::Blob)?;
                    let copied =
                        std::io::copy(&mut (&mut file).take(size), &mut writer).map_err(|e| {
                            let why = write_failure(e, user, size);
                            GitError::Untrusted(format!("{}: {why}", lossy(rel)))
                        })?;
                    if copied != size {
                        return Err(GitError::Untrusted(format!(
                            "{} changed while it was read",
                            lossy(rel)
                        )));
                    }
                    let id = writer.finalize()?;
                    budget -= size;
                    // A folder there before is replaced.
                    edits.put(rel, id, if *executable { 0o100755 } else { 0o100644 });
                    Ok(Visit::Skip)
                }
                EntryKind::Symlink => {
                    if was.is_none() && ignores.is_ignored(rel, false) {
                        return Ok(Visit::Skip);
                    }
                    let target = upper.read_link(rel).map_err(untrusted)?;
                    let id = odb.write(ObjectType::Blob, &target)?;
                    edits.put(rel, id, 0o120000);
                    Ok(Visit::Skip)
                }
                EntryKind::Special(what) => {
                    skipped.push(Skipped {
                        path: lossy(rel),
                        reason: format!("{what}, which git cannot hold"),
                    });
                    Ok(Visit::Skip)
                }
            }
        })();
        match result {
            Ok(v) => v,
            Err(e) => {
                failure = Some(e);
                Visit::Skip
            }
        }
    });
    if let Some(e) = failure {
        return Err(e);
    }
    walked.map_err(untrusted)?;
    Ok((edits.apply(user, start_tree)?, git_changed))
}

/// The repository's `.gitignore` rules as the workspace holds them now (and the
/// user's own global excludes): which new paths are not content.
struct Ignores<'a> {
    upper: &'a UntrustedTree,
    start_tree: &'a Tree<'a>,
    user: &'a Repository,
    /// Matchers by folder (`b""` for the root), loaded when the walk enters them.
    by_dir: HashMap<Vec<u8>, Option<Gitignore>>,
    global: Option<Gitignore>,
}

/// The largest `.gitignore` read.
const MAX_GITIGNORE: u64 = 1 << 20;

impl<'a> Ignores<'a> {
    fn new(
        user: &'a Repository,
        upper: &'a UntrustedTree,
        start_tree: &'a Tree<'a>,
        extra: &[String],
    ) -> Self {
        let mut me = Ignores {
            upper,
            start_tree,
            user,
            by_dir: HashMap::new(),
            global: None,
        };
        me.global = global_excludes(user, extra);
        me.enter(b"");
        me
    }

    /// Loads the rules of the folder `dir` (its `.gitignore` in the workspace now).
    fn enter(&mut self, dir: &[u8]) {
        if self.by_dir.contains_key(dir) {
            return;
        }
        let file: Vec<u8> = if dir.is_empty() {
            b".gitignore".to_vec()
        } else {
            [dir, b"/.gitignore"].concat()
        };
        let text = match self.upper.read_file_if_any(&file, MAX_GITIGNORE) {
            Ok(Some(bytes)) => Some(bytes),
            // Not in the upper folder: as the start tree has it (a whiteout or an
            // opaque folder would have shown up as an entry the walk reported; a
            // deleted .gitignore keeps its rules for this one import, which errs on
            // the side of importing less).
            Ok(None) => self
                .start_tree
                .get_path(path_of(&file))
                .ok()
                .and_then(|e| self.user.find_blob(e.id()).ok())
                .map(|b| b.content().to_vec()),
            Err(_) => None,
        };
        let matcher = text.and_then(|t| {
            let root = Path::new("/").join(path_of(dir));
            let mut b = GitignoreBuilder::new(&root);
            for line in String::from_utf8_lossy(&t).lines() {
                let _ = b.add_line(None, line);
            }
            b.build().ok()
        });
        self.by_dir.insert(dir.to_vec(), matcher);
    }

    /// Whether a new path is ignored: the deepest folder's rule that matches wins.
    fn is_ignored(&self, rel: &[u8], is_dir: bool) -> bool {
        let full = Path::new("/").join(path_of(rel));
        let mut dirs: Vec<&[u8]> = vec![b""];
        for (i, b) in rel.iter().enumerate() {
            if *b == b'/' {
                dirs.push(&rel[..i]);
            }
        }
        for dir in dirs.iter().rev() {
            if let Some(Some(m)) = self.by_dir.get(*dir) {
                let found = m.matched(&full, is_dir);
                if found.is_ignore() {
                    return true;
                }
                if found.is_whitelist() {
                    return false;
                }
            }
        }
        self.global
            .as_ref()
            .is_some_and(|g| g.matched(&full, is_dir).is_ignore())
    }
}

/// The user's own `core.excludesFile` (their git configuration, not the agent's), and
/// `extra` patterns.
fn global_excludes(user: &Repository, extra: &[String]) -> Option<Gitignore> {
    let mut b = GitignoreBuilder::new("/");
    let path = user.config().ok().and_then(|config| {
        config.get_path("core.excludesFile").ok().or_else(|| {
            let xdg = std::env::var_os("XDG_CONFIG_HOME")
                .map(std::path::PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".config")))?;
            Some(xdg.join("git/ignore"))
        })
    });
    if let Some(text) = path.and_then(|p| std::fs::read(p).ok()) {
        for line in String::from_utf8_lossy(&text).lines() {
            let _ = b.add_line(None, line);
        }
    }
    for line in extra {
        let _ = b.add_line(None, line);
    }
    b.build().ok()
}

/// The agent's own commits, when it made some on top of the start commit and they
/// hold up: `Ok(Some((head, count)))`; `Ok(None)` when it made none; `Err(why)` when
/// they cannot be kept.
fn agent_commits_of(
    user: &Repository,
    upper: &UntrustedTree,
    req: &ImportRequest<'_>,
) -> Result<Option<(Oid, usize)>, String> {
    let Some(head) = agent_head(upper, req)? else {
        return Ok(None);
    };
    if head == req.start {
        return Ok(None);
    }
    let quarantine = quarantine(user, upper, req)?;
    let fail = |what: &str, e: git2::Error| format!("{what}: {}", e.message());
    let descends = quarantine
        .graph_descendant_of(head, req.start)
        .map_err(|e| fail("its commits could not be read", e))?;
    if !descends {
        return Err(
            "its HEAD does not descend from the commit it started from (history was rewritten)"
                .into(),
        );
    }
    let mut walk = quarantine.revwalk().map_err(|e| fail("walk", e))?;
    walk.push(head).map_err(|e| fail("walk", e))?;
    walk.hide(req.start).map_err(|e| fail("walk", e))?;
    let commits: Vec<Oid> = walk
        .collect::<Result<_, _>>()
        .map_err(|e| fail("its commits could not be read", e))?;
    if commits.len() > req.limits.max_agent_commits {
        return Err(format!(
            "it made {} commits, more than the {} kept",
            commits.len(),
            req.limits.max_agent_commits
        ));
    }
    // What they would add to the user's repository, before anything is copied.
    let user_odb = user.odb().map_err(|e| fail("odb", e))?;
    let odb = quarantine.odb().map_err(|e| fail("odb", e))?;
    let mut total = 0u64;
    for id in &commits {
        let commit = quarantine
            .find_commit(*id)
            .map_err(|e| fail("a commit is missing or damaged", e))?;
        let tree = commit.tree().map_err(|e| fail("a tree is missing", e))?;
        let parent_tree = match commit.parent(0) {
            Ok(p) => Some(p.tree().map_err(|e| fail("a tree is missing", e))?),
            Err(_) => None,
        };
        let diff = quarantine
            .diff_tree_to_tree(parent_tree.as_ref(), Some(&tree), None)
            .map_err(|e| fail("its commits could not be compared", e))?;
        for delta in diff.deltas() {
            let id = delta.new_file().id();
            if id.is_zero()
                || user_odb.exists(id)
                || delta.new_file().mode() == git2::FileMode::Commit
            {
                continue;
            }
            let (size, _) = odb
                .read_header(id)
                .map_err(|e| fail("a file of its commits is missing", e))?;
            total += size as u64;
        }
    }
    if total > req.limits.max_total_bytes {
        return Err(format!(
            "its commits add {} MiB, more than the task's import limit of {} MiB",
            total >> 20,
            req.limits.max_total_bytes >> 20
        ));
    }
    // Copy what is new, and only that, into the user's repository.
    let mut builder = quarantine.packbuilder().map_err(|e| fail("pack", e))?;
    let mut walk = quarantine.revwalk().map_err(|e| fail("walk", e))?;
    walk.push(head).map_err(|e| fail("walk", e))?;
    walk.hide(req.start).map_err(|e| fail("walk", e))?;
    builder
        .insert_walk(&mut walk)
        .map_err(|e| fail("its commits are incomplete", e))?;
    let mut writer = user_odb.packwriter().map_err(|e| fail("pack", e))?;
    let mut failed = None;
    builder
        .foreach(|chunk| match writer.write_all(chunk) {
            Ok(()) => true,
            Err(e) => {
                failed = Some(e);
                false
            }
        })
        .map_err(|e| fail("its commits could not be copied", e))?;
    if let Some(e) = failed {
        return Err(format!("its commits could not be copied: {e}"));
    }
    writer
        .commit()
        .map_err(|e| fail("its commits could not be copied", e))?;
    Ok(Some((head, commits.len())))
}

/// The commit the agent's `HEAD` names, read as text from its `.git` (never through
/// git): a branch under `refs/heads/` or an object id.
fn agent_head(upper: &UntrustedTree, req: &ImportRequest<'_>) -> Result<Option<Oid>, String> {
    let read = |rel: &str| -> Result<Option<String>, String> {
        match upper.read_file_if_any(format!(".git/{rel}").as_bytes(), 64 << 10) {
            Ok(b) => Ok(b.map(|b| String::from_utf8_lossy(&b).trim().to_string())),
            Err(e) => Err(format!("its .git/{rel} could not be read: {e}")),
        }
    };
    let our_ref = format!("refs/heads/{}", req.branch);
    let head = read("HEAD")?.unwrap_or_else(|| format!("ref: {our_ref}"));
    let name = match head.strip_prefix("ref:") {
        Some(name) => name.trim().to_string(),
        None => return parse_oid(&head).map(Some),
    };
    if !name.starts_with("refs/heads/") || !git2::Reference::is_valid_name(&name) {
        return Err(format!(
            "its HEAD names `{}`, not a branch",
            name.escape_debug()
        ));
    }
    if let Some(value) = read(&name)? {
        return parse_oid(&value).map(Some);
    }
    if let Some(packed) = read("packed-refs")? {
        for line in packed.lines() {
            if let Some((oid, refname)) = line.split_once(' ') {
                if refname == name {
                    return parse_oid(oid).map(Some);
                }
            }
        }
    }
    if name == our_ref {
        return Ok(Some(req.start));
    }
    // A branch that was never given a commit.
    Ok(None)
}

fn parse_oid(text: &str) -> Result<Oid, String> {
    if text.len() == 40 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        Oid::from_str(text).map_err(|e| e.message().to_string())
    } else {
        Err(format!(
            "`{}` is not a commit id",
            text.chars().take(80).collect::<String>().escape_debug()
        ))
    }
}

/// A bare repository of the host's, with the agent's objects copied in (loose files
/// by their validated names, packs through libgit2's indexer) and the user's objects
/// as an alternate, for reading the agent's commits.
fn quarantine(
    user: &Repository,
    upper: &UntrustedTree,
    req: &ImportRequest<'_>,
) -> Result<Repository, String> {
    let io = |e: std::io::Error| format!("the quarantine at {}: {e}", req.scratch.display());
    let _ = crate::untrusted::remove_tree(req.scratch);
    let repo = Repository::init_bare(req.scratch).map_err(|e| e.message().to_string())?;
    let objects = repo.path().join("objects");
    let user_objects = user.path().join("objects");
    std::fs::write(
        objects.join("info/alternates"),
        format!("{}\n", user_objects.display()),
    )
    .map_err(io)?;
    let mut budget = req.limits.max_total_bytes;
    let mut take = |n: u64| -> Result<(), String> {
        budget = budget.checked_sub(n).ok_or_else(|| {
            format!(
                "its object files are larger than the task's import limit of {} MiB",
                req.limits.max_total_bytes >> 20
            )
        })?;
        Ok(())
    };
    let mut loose = Vec::new();
    let mut packs = Vec::new();
    let limits = WalkLimits {
        max_entries: req.limits.max_entries,
        max_depth: 4,
    };
    upper
        .walk(limits, |e| {
            let p = e.path.as_slice();
            if p == b".git" || p == b".git/objects" || p == b".git/objects/pack" {
                return Visit::Descend;
            }
            if let Some(rest) = p.strip_prefix(b".git/objects/") {
                if let EntryKind::Dir { .. } = e.kind {
                    return if rest.len() == 2 && rest.iter().all(u8::is_ascii_hexdigit) {
                        Visit::Descend
                    } else {
                        Visit::Skip
                    };
                }
                if let EntryKind::File { size, .. } = e.kind {
                    let is_hex = |s: &[u8]| s.iter().all(u8::is_ascii_hexdigit);
                    if rest.len() == 41
                        && rest[2] == b'/'
                        && is_hex(&rest[..2])
                        && is_hex(&rest[3..])
                    {
                        loose.push((p.to_vec(), size));
                    } else if rest.starts_with(b"pack/") && rest.ends_with(b".pack") {
                        packs.push((p.to_vec(), size));
                    }
                }
            }
            Visit::Skip
        })
        .map_err(|e| e.to_string())?;
    for (rel, size) in loose {
        take(size)?;
        let bytes = upper.read_file(&rel, size).map_err(|e| e.to_string())?;
        let name = &rel[b".git/objects/".len()..];
        let dest = objects.join(std::ffi::OsStr::from_bytes(name));
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        std::fs::write(&dest, bytes).map_err(io)?;
    }
    let odb = repo.odb().map_err(|e| e.message().to_string())?;
    for (rel, size) in packs {
        take(size)?;
        let (mut file, size) = upper.open_file(&rel).map_err(|e| e.to_string())?;
        let mut writer = odb.packwriter().map_err(|e| e.message().to_string())?;
        std::io::copy(&mut (&mut file).take(size), &mut writer)
            .map_err(|e| format!("{}: {e}", lossy(&rel)))?;
        writer
            .commit()
            .map_err(|e| format!("{} is not a valid pack: {}", lossy(&rel), e.message()))?;
    }
    drop(odb);
    Repository::open_bare(req.scratch).map_err(|e| e.message().to_string())
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

/// Lines added and removed between two commits.
pub fn line_counts(repo: &Repository, base: Oid, head: Oid) -> Result<(usize, usize), GitError> {
    let stats = tree_diff(repo, base, head)?.stats()?;
    Ok((stats.insertions(), stats.deletions()))
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
    if old.id() == new.id() {
        // libgit2 reads every tree of two identical ones (8 ms at 50 000 files); the
        // diff of nothing to nothing is the same empty diff.
        return Ok(repo.diff_tree_to_tree(None, None, Some(&mut opts))?);
    }
    Ok(repo.diff_tree_to_tree(Some(&old), Some(&new), Some(&mut opts))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::test_support::{read_blob, repo_with};
    use std::fs;

    fn sig() -> Signature<'static> {
        Signature::now("Handoff (agent)", "handoff@localhost").unwrap()
    }

    fn is_root() -> bool {
        rustix::process::geteuid().is_root()
    }

    fn import(user: &Repository, upper: &Path, start: Oid, limits: ImportLimits) -> Imported {
        let scratch = tempfile::tempdir().unwrap();
        let signature = sig();
        import_result(
            user,
            &ImportRequest {
                upper,
                start,
                branch: "handoff/1-t",
                scratch: &scratch.path().join("q"),
                signature: &signature,
                message: "leftovers",
                limits,
                ignore: &[],
            },
        )
        .unwrap()
    }

    fn whiteout(path: &Path) {
        rustix::fs::mknodat(
            rustix::fs::CWD,
            path,
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .expect("whiteouts are made with mknod, which needs root (CI runs as root)");
    }

    /// Commits `files` on top of `start` in a repository of the agent's making, and
    /// leaves its objects and branch in `upper/.git` as git would.
    fn agent_commit(user: &Repository, start: Oid, files: &[(&str, &str)], upper: &Path) -> Oid {
        let tmp = tempfile::tempdir().unwrap();
        let agent = Repository::init_bare(tmp.path()).unwrap();
        fs::write(
            tmp.path().join("objects/info/alternates"),
            format!("{}\n", user.path().join("objects").display()),
        )
        .unwrap();
        let agent = Repository::open_bare(agent.path()).unwrap();
        let base = agent.find_commit(start).unwrap();
        let mut update = git2::build::TreeUpdateBuilder::new();
        for (path, content) in files {
            let blob = agent.blob(content.as_bytes()).unwrap();
            update.upsert(*path, blob, git2::FileMode::Blob);
        }
        let tree = update
            .create_updated(&agent, &base.tree().unwrap())
            .unwrap();
        let tree = agent.find_tree(tree).unwrap();
        let commit = agent
            .commit(None, &sig(), &sig(), "agent's own", &tree, &[&base])
            .unwrap();
        copy_dir(&tmp.path().join("objects"), &upper.join(".git/objects"));
        fs::create_dir_all(upper.join(".git/refs/heads/handoff")).unwrap();
        fs::write(
            upper.join(".git/refs/heads/handoff/1-t"),
            format!("{commit}\n"),
        )
        .unwrap();
        commit
    }

    fn copy_dir(from: &Path, to: &Path) {
        fs::create_dir_all(to).unwrap();
        for e in fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                copy_dir(&e.path(), &to.join(e.file_name()));
            } else if e.file_name() != "alternates" {
                fs::copy(e.path(), to.join(e.file_name())).unwrap();
            }
        }
    }

    #[test]
    fn commits_with_one_tree_differ_in_nothing_and_others_in_their_paths() {
        let (dir, repo) = repo_with(&[("a.txt", "a\n"), ("sub/b.txt", "b\n")]);
        let first = repo.head().unwrap().target().unwrap();
        let tree = repo.find_commit(first).unwrap().tree().unwrap();
        // Another commit with the same tree, as a no-op task's result is.
        let same = repo
            .commit(
                None,
                &sig(),
                &sig(),
                "nothing",
                &tree,
                &[&repo.find_commit(first).unwrap()],
            )
            .unwrap();
        assert!(files_changed(&repo, first, same).unwrap().is_empty());
        assert_eq!(line_counts(&repo, first, same).unwrap(), (0, 0));
        assert!(unified_diff(&repo, first, same).unwrap().is_empty());

        fs::write(dir.path().join("sub/b.txt"), "b\nmore\n").unwrap();
        let second = crate::git::test_support::commit_all(&repo, "second");
        assert_eq!(files_changed(&repo, first, second).unwrap(), ["sub/b.txt"]);
        assert_eq!(line_counts(&repo, first, second).unwrap(), (1, 0));
        let diff = String::from_utf8(unified_diff(&repo, first, second).unwrap()).unwrap();
        assert!(
            diff.contains("+++ b/sub/b.txt\n") && diff.ends_with("@@ -1 +1,2 @@\n b\n+more\n"),
            "{diff}"
        );
    }

    #[test]
    fn the_upper_folder_becomes_a_commit_on_the_task_branch() {
        let (_d, user) = repo_with(&[
            ("a.txt", "a\n"),
            ("b.txt", "b\n"),
            ("dir/x", "x\n"),
            ("dir/y", "y\n"),
            (".gitignore", "*.log\n"),
        ]);
        let start = user.head().unwrap().target().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let upper = tmp.path().join("upper");
        fs::create_dir_all(upper.join("dir")).unwrap();
        fs::write(upper.join("a.txt"), b"agent\r\n\xff").unwrap();
        fs::write(upper.join("new.txt"), "new\n").unwrap();
        fs::write(upper.join("debug.log"), "ignored\n").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", upper.join("link")).unwrap();
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            upper.join("fifo"),
            rustix::fs::Mode::from_raw_mode(0o644),
        )
        .unwrap();
        fs::create_dir_all(upper.join("vendored/.git")).unwrap();
        fs::write(upper.join("vendored/file"), "x").unwrap();
        if is_root() {
            whiteout(&upper.join("b.txt"));
            fs::write(upper.join("dir/z"), "z\n").unwrap();
            rustix::fs::setxattr(
                upper.join("dir"),
                "user.overlay.opaque",
                b"y",
                rustix::fs::XattrFlags::empty(),
            )
            .unwrap();
        }
        let got = import(&user, &upper, start, ImportLimits::default());
        let head = got.head;
        assert_eq!(user.refname_to_id("refs/heads/handoff/1-t").unwrap(), head);
        let commit = user.find_commit(head).unwrap();
        assert_eq!(commit.parent_id(0).unwrap(), start);
        assert_eq!(commit.author().name().ok(), Some("Handoff (agent)"));
        let blob = |p: &str| read_blob(&user, head, p);
        assert_eq!(
            user.find_blob(
                commit
                    .tree()
                    .unwrap()
                    .get_path(Path::new("a.txt"))
                    .unwrap()
                    .id()
            )
            .unwrap()
            .content(),
            b"agent\r\n\xff"
        );
        assert_eq!(blob("new.txt").as_deref(), Some("new\n"));
        assert_eq!(blob("debug.log"), None, "ignored by .gitignore");
        assert_eq!(
            blob("link").as_deref(),
            Some("/etc/passwd"),
            "a symlink, never followed"
        );
        let link = commit.tree().unwrap().get_path(Path::new("link")).unwrap();
        assert_eq!(link.filemode(), 0o120000);
        assert_eq!(blob("fifo"), None);
        assert_eq!(blob("vendored/file"), None);
        let reasons: Vec<String> = got
            .skipped
            .iter()
            .map(|s| format!("{}: {}", s.path, s.reason))
            .collect();
        assert!(
            reasons.iter().any(|r| r.starts_with("fifo: a FIFO")),
            "{reasons:?}"
        );
        assert!(
            reasons
                .iter()
                .any(|r| r.starts_with("vendored: a nested git repository")),
            "{reasons:?}"
        );
        if is_root() {
            assert_eq!(blob("b.txt"), None, "a whiteout deletes");
            assert_eq!(blob("dir/x"), None, "an opaque folder replaces");
            assert_eq!(blob("dir/z").as_deref(), Some("z\n"));
        }
        assert_eq!(got.agent_commits, 0);
    }

    #[test]
    fn files_past_the_import_limit_are_reported_not_imported() {
        let (_d, user) = repo_with(&[("a.txt", "a\n")]);
        let start = user.head().unwrap().target().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let upper = tmp.path().join("upper");
        fs::create_dir_all(&upper).unwrap();
        fs::write(upper.join("big.bin"), vec![7u8; 3 << 20]).unwrap();
        fs::write(upper.join("small.txt"), "ok").unwrap();
        let limits = ImportLimits {
            max_total_bytes: 1 << 20,
            ..ImportLimits::default()
        };
        let got = import(&user, &upper, start, limits);
        assert_eq!(read_blob(&user, got.head, "big.bin"), None);
        assert_eq!(
            read_blob(&user, got.head, "small.txt").as_deref(),
            Some("ok")
        );
        assert_eq!(got.skipped.len(), 1);
        assert!(got.skipped[0].reason.contains("3 MiB"), "{:?}", got.skipped);
    }

    #[test]
    fn the_agents_own_commits_are_kept_with_leftovers_on_top() {
        let (_d, user) = repo_with(&[("a.txt", "a\n")]);
        let start = user.head().unwrap().target().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let upper = tmp.path().join("upper");
        fs::create_dir_all(&upper).unwrap();
        let own = agent_commit(&user, start, &[("a.txt", "committed\n")], &upper);
        fs::write(upper.join("a.txt"), "committed\n").unwrap();
        fs::write(upper.join("left.txt"), "left over\n").unwrap();
        let got = import(&user, &upper, start, ImportLimits::default());
        assert_eq!(got.agent_commits, 1);
        let head = user.find_commit(got.head).unwrap();
        assert_eq!(head.parent_id(0).unwrap(), own);
        assert_eq!(
            user.find_commit(own).unwrap().message().ok(),
            Some("agent's own")
        );
        assert_eq!(
            read_blob(&user, got.head, "left.txt").as_deref(),
            Some("left over\n")
        );
        assert_eq!(
            read_blob(&user, got.head, "a.txt").as_deref(),
            Some("committed\n")
        );
    }

    #[test]
    fn hostile_git_folders_lose_the_commits_but_never_the_files() {
        let (_d, user) = repo_with(&[("a.txt", "a\n")]);
        let start = user.head().unwrap().target().unwrap();
        // Another repository's object the agent must not be able to pull in.
        let (_o, other) = repo_with(&[("secret.txt", "the other repository's secret\n")]);
        let secret_commit = other.head().unwrap().target().unwrap();
        type Attack = Box<dyn Fn(&Path)>;
        let cases: Vec<(&str, Attack)> = vec![
            (
                "HEAD outside refs/heads",
                Box::new(|u: &Path| {
                    fs::write(u.join(".git/HEAD"), "ref: ../../../../etc/passwd\n").unwrap();
                }),
            ),
            (
                "HEAD a symlink",
                Box::new(|u: &Path| {
                    std::os::unix::fs::symlink("/etc/hostname", u.join(".git/HEAD")).unwrap();
                }),
            ),
            ("alternates to another repository", {
                let other_objects = other.path().join("objects");
                Box::new(move |u: &Path| {
                    fs::create_dir_all(u.join(".git/objects/info")).unwrap();
                    fs::write(
                        u.join(".git/objects/info/alternates"),
                        format!("{}\n", other_objects.display()),
                    )
                    .unwrap();
                    fs::create_dir_all(u.join(".git/refs/heads/handoff")).unwrap();
                    fs::write(
                        u.join(".git/refs/heads/handoff/1-t"),
                        format!("{secret_commit}\n"),
                    )
                    .unwrap();
                })
            }),
            ("a symlinked object folder", {
                let other_objects = other.path().join("objects");
                Box::new(move |u: &Path| {
                    std::os::unix::fs::symlink(&other_objects, u.join(".git/objects")).unwrap();
                    fs::create_dir_all(u.join(".git/refs/heads/handoff")).unwrap();
                    fs::write(
                        u.join(".git/refs/heads/handoff/1-t"),
                        format!("{secret_commit}\n"),
                    )
                    .unwrap();
                })
            }),
            ("rewritten history", {
                let other_commit = secret_commit;
                Box::new(move |u: &Path| {
                    fs::write(u.join(".git/HEAD"), format!("{other_commit}\n")).unwrap();
                })
            }),
        ];
        for (name, attack) in cases {
            let tmp = tempfile::tempdir().unwrap();
            let upper = tmp.path().join("upper");
            fs::create_dir_all(upper.join(".git")).unwrap();
            fs::write(upper.join("work.txt"), "the agent's work\n").unwrap();
            attack(&upper);
            let got = import(&user, &upper, start, ImportLimits::default());
            assert_eq!(got.agent_commits, 0, "{name}");
            assert!(got.commits_dropped.is_some(), "{name}: the user is told");
            assert_eq!(
                read_blob(&user, got.head, "work.txt").as_deref(),
                Some("the agent's work\n"),
                "{name}"
            );
            assert_eq!(
                user.find_commit(got.head).unwrap().parent_id(0).unwrap(),
                start,
                "{name}"
            );
            assert!(
                user.find_commit(secret_commit).is_err(),
                "{name}: nothing of the other repository came in"
            );
        }
    }
}
