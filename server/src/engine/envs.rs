//! Setup snapshots ("environments"): what a profile's `setup` left in the workspace
//! and HOME, kept so the next task with the same image, setup command and lockfiles
//! starts from it instead of running the setup again.
//!
//! An environment is a folder `<git-dir>/handoff/envs/<key>/` holding `layer/` (the
//! setup container's overlay upper folder, moved there whole: one rename, no copy),
//! `home/` (a copy of the HOME the setup left) and `env.json` (what it was made
//! from). A task that uses it gets `layer/` as a read-only lower layer of its
//! workspace, above its own start layer and the shared base checkout, and a copy of
//! `home/` as its HOME. Its own writes go to its own upper folder, so no agent can
//! change an environment another task starts from.
//!
//! Only a setup that added files the repository does not track is kept: one that
//! changed or deleted a tracked file, or replaced a tracked folder, made something
//! that depends on the commit, and is run afresh each time (the task says why). The
//! workspace's `.git` is never part of an environment. Setup runs without the
//! agent's credentials, so an environment holds none.
//!
//! The key is a hash of the image's id, the setup command, the lockfiles' blob ids
//! at the task's start and the agent's uid: a new image, an edited setup or a changed
//! lockfile is a new environment. Environments belong to one repository.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use git2::{ObjectType, Oid, Tree};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::untrusted::{self, EntryKind, UntrustedTree, Visit, WalkLimits};

/// The HOME a setup leaves is copied; more than this is not kept.
const HOME_LIMIT: u64 = 1 << 30;

/// Tracked files larger than this that the setup copied up are compared by size only
/// (and so count as changed).
const COMPARE_LIMIT: u64 = 64 << 20;

/// The version of what an environment holds; part of the key.
const FORMAT: u32 = 1;

/// Environments no task used for this long are removed by [`Envs::prune`].
pub const KEEP_UNUSED: Duration = Duration::from_secs(14 * 24 * 3600);

/// What an environment was made from, as `env.json` keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvInfo {
    pub key: String,
    pub profile: String,
    pub image: String,
    pub image_id: String,
    pub setup: String,
    /// `name:blob` of each lockfile at the commit it was made on.
    pub lockfiles: Vec<String>,
    pub uid: u32,
    /// The commit the setup ran on, and the task it ran for.
    pub commit: String,
    pub task: u64,
    pub created_at: DateTime<Utc>,
    /// Entries and bytes of the workspace layer and of HOME.
    pub files: u64,
    pub bytes: u64,
    pub home_files: u64,
    pub home_bytes: u64,
}

/// One environment as `handoff env list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct EnvEntry {
    #[serde(flatten)]
    pub info: EnvInfo,
    pub last_used: DateTime<Utc>,
}

/// The inputs of an environment's key.
pub struct KeyInputs<'a> {
    pub image_id: &'a str,
    pub setup: &'a str,
    pub lockfiles: &'a [String],
    pub uid: u32,
}

/// The key of the environment `inputs` make: 20 hex digits of a SHA-256.
pub fn key(inputs: &KeyInputs) -> String {
    let mut h = Sha256::new();
    let mut field = |name: &str, value: &[u8]| {
        h.update(name.as_bytes());
        h.update((value.len() as u64).to_le_bytes());
        h.update(value);
    };
    field("format", FORMAT.to_string().as_bytes());
    field("image", inputs.image_id.as_bytes());
    field("setup", inputs.setup.as_bytes());
    for lock in inputs.lockfiles {
        field("lockfile", lock.as_bytes());
    }
    field("uid", inputs.uid.to_string().as_bytes());
    format!("{:x}", h.finalize())[..20].to_string()
}

/// Whether a key is one [`key`] makes (names on disk are checked before use).
pub fn is_key(s: &str) -> bool {
    s.len() == 20
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// What became of a setup's workspace after it ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Saved {
    /// Kept as an environment; the upper folder is now its layer.
    Kept(EnvInfo),
    /// Not kept, for the reason given; the upper folder is as the setup left it.
    NotKept(String),
}

#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("{0}")]
    Io(String),
    #[error("no environment {0}; `handoff env list` shows them")]
    NotFound(String),
    #[error("environment {key} is in use by task {task}; wait for it or cancel it")]
    InUse { key: String, task: u64 },
}

fn io(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> EnvError {
    let text = format!("cannot {what} {}", path.display());
    move |e| EnvError::Io(format!("{text}: {e}"))
}

/// The environments of one repository.
#[derive(Debug, Clone)]
pub struct Envs {
    root: PathBuf,
}

impl Envs {
    pub fn new(root: PathBuf) -> Envs {
        Envs { root }
    }

    fn dir(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    /// The workspace layer of environment `key`.
    pub fn layer(&self, key: &str) -> PathBuf {
        self.dir(key).join("layer")
    }

    /// The HOME environment `key` starts agents with.
    pub fn home(&self, key: &str) -> PathBuf {
        self.dir(key).join("home")
    }

    /// Environment `key`, if it is complete (its `env.json` written last).
    pub fn get(&self, key: &str) -> Option<EnvInfo> {
        if !is_key(key) {
            return None;
        }
        let dir = UntrustedTree::open(&self.dir(key)).ok()??;
        let text = dir.read_file(b"env.json", 64 << 10).ok()?;
        let info: EnvInfo = serde_json::from_slice(&text).ok()?;
        (info.key == key && matches!(dir.kind_of(b"layer"), Some(EntryKind::Dir { .. })))
            .then_some(info)
    }

    /// Every complete environment, most recently used first.
    pub fn list(&self) -> Vec<EnvEntry> {
        let Ok(names) = std::fs::read_dir(&self.root) else {
            return vec![];
        };
        let mut out: Vec<EnvEntry> = names
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter_map(|name| {
                let info = self.get(&name)?;
                Some(EnvEntry {
                    last_used: self.last_used(&name).into(),
                    info,
                })
            })
            .collect();
        out.sort_by_key(|e| std::cmp::Reverse(e.last_used));
        out
    }

    fn last_used(&self, key: &str) -> SystemTime {
        let dir = self.dir(key);
        std::fs::symlink_metadata(dir.join("used"))
            .or_else(|_| std::fs::symlink_metadata(dir.join("env.json")))
            .and_then(|m| m.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH)
    }

    /// Notes that a task starts from environment `key` now.
    pub fn touch(&self, key: &str) {
        if is_key(key) {
            let _ = crate::engine::store::write_atomic(&self.dir(key).join("used"), b"");
        }
    }

    /// Removes environment `key`: a rename out of the way (tasks starting now no
    /// longer find it), then the slow removal. Tasks that run from it must have ended
    /// (the caller checks).
    pub fn remove(&self, key: &str) -> Result<(), EnvError> {
        if !is_key(key) || !self.dir(key).is_dir() {
            return Err(EnvError::NotFound(key.to_string()));
        }
        let gone = self
            .root
            .join(format!(".removed-{key}-{}", std::process::id()));
        std::fs::rename(self.dir(key), &gone).map_err(io("remove", &self.dir(key)))?;
        untrusted::remove_tree(&gone).map_err(io("remove", &gone))
    }

    /// Removes environments unused for `keep`, but none of `in_use`; returns their keys.
    pub fn prune(&self, keep: Duration, in_use: &[String]) -> Vec<String> {
        let now = SystemTime::now();
        let mut removed = Vec::new();
        for entry in self.list() {
            let key = entry.info.key;
            let used = self.last_used(&key);
            if in_use.contains(&key) || now.duration_since(used).unwrap_or_default() < keep {
                continue;
            }
            if self.remove(&key).is_ok() {
                removed.push(key);
            }
        }
        removed
    }

    /// Keeps what a setup left as environment `info.key`, if it may be kept: moves
    /// `upper` (the setup's overlay upper folder, its container gone) to be the
    /// environment's layer and copies `home`. `tree` is the commit the setup ran on.
    /// On [`Saved::NotKept`] `upper` is untouched (or as it was, when the move was
    /// undone), and the task goes on with it.
    pub fn save(
        &self,
        mut info: EnvInfo,
        upper: &Path,
        home: &Path,
        tree: &Tree,
    ) -> Result<Saved, EnvError> {
        if self.get(&info.key).is_some() {
            return Ok(Saved::NotKept(
                "another task kept the same environment first".into(),
            ));
        }
        let Some(layer) = UntrustedTree::open(upper).map_err(|e| EnvError::Io(e.to_string()))?
        else {
            return Ok(Saved::NotKept("the setup left no workspace".into()));
        };
        let (drop, stats) = match classify(&layer, tree)? {
            Ok(found) => found,
            Err(why) => return Ok(Saved::NotKept(why)),
        };
        drop_paths(upper, &drop)?;
        info.files = stats.files;
        info.bytes = stats.bytes;

        std::fs::create_dir_all(&self.root).map_err(io("create", &self.root))?;
        let tmp = self
            .root
            .join(format!(".new-{}-{}", info.key, std::process::id()));
        let _ = untrusted::remove_tree(&tmp);
        std::fs::create_dir(&tmp).map_err(io("create", &tmp))?;
        let undo = |why: String| -> Result<Saved, EnvError> {
            if tmp.join("layer").exists() {
                std::fs::rename(tmp.join("layer"), upper).map_err(io("restore", upper))?;
            }
            let _ = untrusted::remove_tree(&tmp);
            Ok(Saved::NotKept(why))
        };
        std::fs::rename(upper, tmp.join("layer")).map_err(io("move", upper))?;
        match untrusted::copy_tree(home, &tmp.join("home"), None, HOME_LIMIT) {
            Ok(copied) => {
                info.home_files = copied.files;
                info.home_bytes = copied.bytes;
            }
            Err(e) => return undo(format!("its HOME could not be kept: {e}")),
        }
        let json = serde_json::to_vec_pretty(&info).expect("an EnvInfo serializes");
        if let Err(e) = crate::engine::store::write_atomic(&tmp.join("env.json"), &json) {
            return undo(format!("cannot write env.json: {e}"));
        }
        match std::fs::rename(&tmp, self.dir(&info.key)) {
            Ok(()) => {
                self.touch(&info.key);
                Ok(Saved::Kept(info))
            }
            Err(_) => undo("another task kept the same environment first".into()),
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Stats {
    files: u64,
    bytes: u64,
}

/// What a walk of a setup's upper folder found: the paths to leave out and the
/// size, or why it cannot be an environment.
type Classified = Result<(Vec<Vec<u8>>, Stats), String>;

/// Walks a setup's upper folder: the paths to leave out of the environment (its
/// `.git`, copies of tracked files the setup did not change, FIFOs and the like) and
/// its size; or, in words, why it cannot be an environment.
fn classify(layer: &UntrustedTree, tree: &Tree) -> Result<Classified, EnvError> {
    let mut drop = Vec::new();
    let mut stats = Stats::default();
    let mut why: Option<String> = None;
    let shown = |p: &[u8]| String::from_utf8_lossy(p).into_owned();
    layer
        .walk(WalkLimits::default(), |entry| {
            if why.is_some() {
                return Visit::Skip;
            }
            let path = &entry.path;
            if path.as_slice() == b".git" {
                drop.push(path.clone());
                return Visit::Skip;
            }
            let tracked = std::str::from_utf8(path)
                .ok()
                .and_then(|p| tree.get_path(Path::new(p)).ok());
            match (&entry.kind, tracked) {
                (EntryKind::Dir { opaque: true }, Some(_)) => {
                    why = Some(format!(
                        "the setup replaced the tracked folder {}",
                        shown(path)
                    ));
                    Visit::Skip
                }
                (EntryKind::Dir { .. }, _) => Visit::Descend,
                (EntryKind::Whiteout, _) => {
                    why = Some(format!("the setup deleted {}", shown(path)));
                    Visit::Skip
                }
                (EntryKind::Special(_), _) => {
                    drop.push(path.clone());
                    Visit::Skip
                }
                (EntryKind::File { size, .. }, None) => {
                    stats.files += 1;
                    stats.bytes += size;
                    Visit::Skip
                }
                (EntryKind::Symlink, None) => {
                    stats.files += 1;
                    Visit::Skip
                }
                (kind, Some(entry)) => {
                    if same_as_tracked(layer, path, kind, &entry) {
                        drop.push(path.clone());
                    } else {
                        why = Some(format!(
                            "the setup changed {}, which the repository tracks",
                            shown(path)
                        ));
                    }
                    Visit::Skip
                }
            }
        })
        .map_err(|e| EnvError::Io(e.to_string()))?;
    Ok(match why {
        Some(why) => Err(why),
        None => Ok((drop, stats)),
    })
}

/// Whether the file or symlink at `path` is what the tree has there (a copy-up
/// without a change, say after a `chmod` to the same mode).
fn same_as_tracked(
    layer: &UntrustedTree,
    path: &[u8],
    kind: &EntryKind,
    entry: &git2::TreeEntry,
) -> bool {
    let mode = entry.filemode();
    let content = match kind {
        EntryKind::File { size, executable } if *size <= COMPARE_LIMIT => {
            let wanted = if *executable { 0o100755 } else { 0o100644 };
            if mode != wanted {
                return false;
            }
            match layer.read_file(path, COMPARE_LIMIT) {
                Ok(c) => c,
                Err(_) => return false,
            }
        }
        EntryKind::Symlink if mode == 0o120000 => match layer.read_link(path) {
            Ok(c) => c,
            Err(_) => return false,
        },
        _ => return false,
    };
    Oid::hash_object(ObjectType::Blob, &content).ok() == Some(entry.id())
}

/// Removes `paths` (relative, from a walk of the same folder) below `root`.
fn drop_paths(root: &Path, paths: &[Vec<u8>]) -> Result<(), EnvError> {
    for rel in paths {
        if let Some(path) = untrusted::join_below(root, rel) {
            untrusted::remove_tree(&path).map_err(io("remove", &path))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use git2::Repository;
    use std::os::unix::fs::symlink;

    fn repo_with(files: &[(&str, &str)]) -> (tempfile::TempDir, Repository, Oid) {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path().join("repo")).unwrap();
        let mut builder = repo.treebuilder(None).unwrap();
        let mut subs: std::collections::BTreeMap<&str, Vec<(&str, &str)>> = Default::default();
        for (path, content) in files {
            match path.split_once('/') {
                Some((dir, name)) => subs.entry(dir).or_default().push((name, content)),
                None => {
                    let blob = repo.blob(content.as_bytes()).unwrap();
                    builder.insert(path, blob, 0o100644).unwrap();
                }
            }
        }
        for (dir, entries) in subs {
            let mut sub = repo.treebuilder(None).unwrap();
            for (name, content) in entries {
                sub.insert(name, repo.blob(content.as_bytes()).unwrap(), 0o100644)
                    .unwrap();
            }
            builder.insert(dir, sub.write().unwrap(), 0o040000).unwrap();
        }
        let tree = builder.write().unwrap();
        drop(builder);
        (dir, repo, tree)
    }

    fn info(key: &str) -> EnvInfo {
        EnvInfo {
            key: key.into(),
            profile: "shell".into(),
            image: "img".into(),
            image_id: "sha256:1".into(),
            setup: "npm ci".into(),
            lockfiles: vec![],
            uid: 1000,
            commit: "0".repeat(40),
            task: 1,
            created_at: Utc::now(),
            files: 0,
            bytes: 0,
            home_files: 0,
            home_bytes: 0,
        }
    }

    fn k(n: u32) -> String {
        key(&KeyInputs {
            image_id: "sha256:1",
            setup: "npm ci",
            lockfiles: &[],
            uid: n,
        })
    }

    #[test]
    fn keys_change_with_every_input() {
        let base = KeyInputs {
            image_id: "sha256:1",
            setup: "npm ci",
            lockfiles: &["package-lock.json:abc".into()],
            uid: 1000,
        };
        let one = key(&base);
        assert!(is_key(&one), "{one}");
        assert_eq!(one, key(&base));
        let other_lock = ["package-lock.json:abd".to_string()];
        for changed in [
            KeyInputs {
                image_id: "sha256:2",
                ..base
            },
            KeyInputs {
                setup: "npm install",
                ..base
            },
            KeyInputs {
                lockfiles: &other_lock,
                ..base
            },
            KeyInputs { uid: 1001, ..base },
        ] {
            assert_ne!(key(&changed), one);
        }
        assert!(!is_key("../../etc"));
        assert!(!is_key(&one.to_uppercase()));
    }

    #[test]
    fn a_setup_that_only_added_untracked_files_is_kept_without_its_git() {
        let (dir, repo, tree) = repo_with(&[("a.txt", "a\n"), ("src/lib.js", "x\n")]);
        let tree = repo.find_tree(tree).unwrap();
        let upper = dir.path().join("upper");
        std::fs::create_dir_all(upper.join("node_modules/dep")).unwrap();
        std::fs::write(upper.join("node_modules/dep/index.js"), "v1\n").unwrap();
        symlink("../dep/index.js", upper.join("node_modules/dep/link")).unwrap();
        // A generated file beside tracked ones, and a copy-up that changed nothing.
        std::fs::create_dir_all(upper.join("src")).unwrap();
        std::fs::write(upper.join("src/gen.js"), "gen\n").unwrap();
        std::fs::write(upper.join("a.txt"), "a\n").unwrap();
        std::fs::create_dir_all(upper.join(".git")).unwrap();
        std::fs::write(upper.join(".git/index"), "idx").unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir_all(home.join(".local")).unwrap();
        std::fs::write(home.join(".local/tool"), "t").unwrap();

        let envs = Envs::new(dir.path().join("envs"));
        let key = k(1);
        let saved = envs.save(info(&key), &upper, &home, &tree).unwrap();
        let Saved::Kept(kept) = saved else {
            panic!("not kept: {saved:?}")
        };
        assert_eq!((kept.files, kept.bytes), (3, 7));
        assert_eq!(kept.home_files, 1);
        assert!(!upper.exists(), "the upper folder became the layer");
        let layer = envs.layer(&key);
        assert_eq!(
            std::fs::read_to_string(layer.join("node_modules/dep/index.js")).unwrap(),
            "v1\n"
        );
        assert!(layer.join("src/gen.js").exists());
        assert!(
            !layer.join("a.txt").exists(),
            "an unchanged copy-up is left out"
        );
        assert!(!layer.join(".git").exists());
        assert_eq!(
            std::fs::read_to_string(envs.home(&key).join(".local/tool")).unwrap(),
            "t"
        );
        assert_eq!(envs.get(&key), Some(kept.clone()));
        let listed = envs.list();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].info, kept);

        // The same key again: the first one stays, the second workspace is untouched.
        std::fs::create_dir_all(upper.join("node_modules")).unwrap();
        assert_eq!(
            envs.save(info(&key), &upper, &home, &tree).unwrap(),
            Saved::NotKept("another task kept the same environment first".into())
        );
        assert!(upper.join("node_modules").is_dir());

        envs.remove(&key).unwrap();
        assert_eq!(envs.get(&key), None);
        assert!(matches!(envs.remove(&key), Err(EnvError::NotFound(_))));
        assert!(matches!(envs.remove("../x"), Err(EnvError::NotFound(_))));
    }

    #[test]
    fn a_setup_that_changed_tracked_files_is_not_kept_and_its_workspace_stays() {
        let (dir, repo, tree) = repo_with(&[("a.txt", "a\n"), ("src/lib.js", "x\n")]);
        let tree = repo.find_tree(tree).unwrap();
        let envs = Envs::new(dir.path().join("envs"));
        let home = dir.path().join("home");
        let upper = dir.path().join("upper");
        std::fs::create_dir_all(upper.join("src")).unwrap();
        std::fs::write(upper.join("src/lib.js"), "generated\n").unwrap();
        std::fs::write(upper.join("new.txt"), "n").unwrap();
        let saved = envs.save(info(&k(2)), &upper, &home, &tree).unwrap();
        assert_eq!(
            saved,
            Saved::NotKept("the setup changed src/lib.js, which the repository tracks".into())
        );
        assert_eq!(
            std::fs::read_to_string(upper.join("src/lib.js")).unwrap(),
            "generated\n"
        );
        assert!(upper.join("new.txt").exists());
        assert!(envs.list().is_empty());

        // A symlink where a tracked file was is a change too.
        std::fs::remove_file(upper.join("src/lib.js")).unwrap();
        symlink("/etc/passwd", upper.join("src/lib.js")).unwrap();
        assert!(matches!(
            envs.save(info(&k(2)), &upper, &home, &tree).unwrap(),
            Saved::NotKept(_)
        ));
    }

    #[test]
    fn a_setup_whose_home_is_too_big_or_unreadable_leaves_its_workspace_as_it_was() {
        let (dir, repo, tree) = repo_with(&[("a.txt", "a\n")]);
        let tree = repo.find_tree(tree).unwrap();
        let envs = Envs::new(dir.path().join("envs"));
        let upper = dir.path().join("upper");
        std::fs::create_dir_all(upper.join("node_modules")).unwrap();
        std::fs::write(upper.join("node_modules/x"), "x").unwrap();
        // HOME is a symlink (the agent could not make it one, but a bad disk could
        // leave anything): the copy refuses it and the move is undone.
        let home = dir.path().join("home");
        symlink("/etc", &home).unwrap();
        let saved = envs.save(info(&k(3)), &upper, &home, &tree).unwrap();
        assert!(
            matches!(&saved, Saved::NotKept(why) if why.starts_with("its HOME could not be kept")),
            "{saved:?}"
        );
        assert_eq!(
            std::fs::read_to_string(upper.join("node_modules/x")).unwrap(),
            "x"
        );
        assert!(envs.list().is_empty());
        assert_eq!(
            std::fs::read_dir(dir.path().join("envs")).unwrap().count(),
            0
        );
    }

    #[test]
    fn pruning_spares_recent_and_busy_environments() {
        let (dir, repo, tree) = repo_with(&[("a.txt", "a\n")]);
        let tree = repo.find_tree(tree).unwrap();
        let envs = Envs::new(dir.path().join("envs"));
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        for n in [10, 11] {
            let upper = dir.path().join(format!("upper{n}"));
            std::fs::create_dir_all(upper.join("node_modules")).unwrap();
            assert!(matches!(
                envs.save(info(&k(n)), &upper, &home, &tree).unwrap(),
                Saved::Kept(_)
            ));
        }
        assert!(envs.prune(KEEP_UNUSED, &[]).is_empty(), "both are recent");
        let removed = envs.prune(Duration::ZERO, &[k(10)]);
        assert_eq!(removed, vec![k(11)]);
        assert_eq!(envs.list().len(), 1);
    }
}
