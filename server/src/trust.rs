//! Trust in a repository's own configuration.
//!
//! A cloned repository's `.handoff.toml`, `.handoff/` and dev container
//! (`.devcontainer/`, `.devcontainer.json` and the Dockerfile it builds) were written by
//! someone else. Until the user trusts them — for this repository and this exact content — only
//! settings that cannot widen the sandbox apply (see [`crate::config`]). Trust is
//! recorded by the content's SHA-256 in the user's own configuration folder
//! (`trust.json` beside `config.toml`), so any change to the files asks again.
//!
//! This module knows files and hashes; which keys are harmless is the config's to say.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The largest file of a repository's configuration read for its hash.
const MAX_CONFIG_FILE: u64 = 16 << 20;

/// What the user decided for one repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trusted {
    /// SHA-256 of the configuration content that was trusted.
    pub sha256: String,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// Where a repository's configuration stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum TrustState {
    /// The repository ships no configuration of its own.
    NoConfig,
    /// Trusted as it is now.
    Trusted { sha256: String },
    /// Never trusted, or changed since (`was` holds the hash that was trusted).
    Untrusted { sha256: String, was: Option<String> },
}

impl TrustState {
    pub fn is_trusted(&self) -> bool {
        matches!(self, TrustState::NoConfig | TrustState::Trusted { .. })
    }

    /// The hash of the configuration this state was decided on; `None` when there is
    /// none.
    pub fn sha256(&self) -> Option<&str> {
        match self {
            TrustState::NoConfig => None,
            TrustState::Trusted { sha256 } | TrustState::Untrusted { sha256, .. } => Some(sha256),
        }
    }
}

/// The trust store: `trust.json` in the user's Handoff configuration folder.
#[cfg(not(test))]
pub fn store_path() -> Option<PathBuf> {
    crate::config::Config::user_path().map(|p| p.with_file_name("trust.json"))
}

/// In unit tests, a store of the test process's own, never the user's: tests that
/// trust a repository as the user would (its key is its own temporary folder) must not
/// write to the user's configuration.
#[cfg(test)]
pub fn store_path() -> Option<PathBuf> {
    Some(std::env::temp_dir().join(format!(
        "handoff-unit-tests-{}/trust.json",
        std::process::id()
    )))
}

/// Serializes this process's read-modify-write of the store, so that two trusts at
/// once (two language server requests) both land.
static STORE_WRITE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn read_store(path: &Path) -> BTreeMap<String, Trusted> {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn key(workdir: &Path) -> String {
    workdir
        .canonicalize()
        .unwrap_or_else(|_| workdir.to_path_buf())
        .display()
        .to_string()
}

/// The repository-supplied configuration files of `workdir`, relative, sorted:
/// `.handoff.toml`, everything under `.handoff/` and `.devcontainer/`,
/// `.devcontainer.json`, and the Dockerfile a devcontainer.json builds from wherever it
/// is in the repository.
pub fn config_files(workdir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for file in [".handoff.toml", ".devcontainer.json"] {
        if workdir.join(file).is_file() {
            files.push(PathBuf::from(file));
        }
    }
    fn walk(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(root.join(rel)) else {
            return;
        };
        for entry in entries.flatten() {
            let Ok(t) = entry.file_type() else { continue };
            let r = rel.join(entry.file_name());
            if t.is_dir() {
                walk(root, &r, out);
            } else if t.is_file() {
                out.push(r);
            }
        }
    }
    // A folder that is a link (to `/`, say) is not walked: its files are not the
    // repository's, and walking them could take forever.
    let is_folder = |rel: &str| {
        std::fs::symlink_metadata(workdir.join(rel)).is_ok_and(|m| m.file_type().is_dir())
    };
    if is_folder(".handoff") {
        walk(workdir, Path::new(".handoff"), &mut files);
    }
    // `.devcontainer/` is configuration when it holds the dev container Handoff reads.
    if is_folder(".devcontainer") && crate::devcontainer::find(workdir).is_some() {
        walk(workdir, Path::new(".devcontainer"), &mut files);
    }
    for file in crate::devcontainer::definition_files(workdir) {
        if workdir.join(&file).is_file() && !files.contains(&file) {
            files.push(file);
        }
    }
    files.sort();
    files
}

/// The SHA-256 of the repository's configuration as it is now; `None` when it has
/// none.
pub fn config_hash(workdir: &Path) -> std::io::Result<Option<String>> {
    let files = config_files(workdir);
    if files.is_empty() {
        return Ok(None);
    }
    let mut hash = Sha256::new();
    for rel in files {
        let path = workdir.join(&rel);
        let meta = std::fs::symlink_metadata(&path)?;
        if !meta.is_file() || meta.len() > MAX_CONFIG_FILE {
            continue;
        }
        let bytes = std::fs::read(&path)?;
        hash.update(rel.as_os_str().as_encoded_bytes());
        hash.update([0]);
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(&bytes);
    }
    Ok(Some(hex(&hash.finalize())))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether the repository's configuration is trusted as it is now.
pub fn state(workdir: &Path) -> std::io::Result<TrustState> {
    let Some(sha256) = config_hash(workdir)? else {
        return Ok(TrustState::NoConfig);
    };
    #[cfg(test)]
    if workdir.join(TEST_MARKER).exists() {
        return Ok(TrustState::Trusted { sha256 });
    }
    let was = store_path()
        .map(|p| read_store(&p))
        .and_then(|mut s| s.remove(&key(workdir)))
        .map(|t| t.sha256);
    Ok(if was.as_deref() == Some(sha256.as_str()) {
        TrustState::Trusted { sha256 }
    } else {
        TrustState::Untrusted { sha256, was }
    })
}

/// Records the user's trust in the repository's configuration as it is now. Returns
/// the hash trusted; `None` when there is nothing to trust.
pub fn trust(workdir: &Path) -> std::io::Result<Option<String>> {
    Ok(match trust_if(workdir, None)? {
        Recorded::Trusted(sha256) => Some(sha256),
        Recorded::NoConfig | Recorded::Changed => None,
    })
}

/// What [`trust_if`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// Trusted the content with this hash.
    Trusted(String),
    /// The repository has no configuration of its own.
    NoConfig,
    /// The content is not the one expected (it changed since the user saw it): nothing
    /// was recorded.
    Changed,
}

/// Records the user's trust in the repository's configuration as it is now — when
/// `expected` is given, only if that is still its hash, so that content that changed
/// after the user was asked about it is never trusted unseen.
pub fn trust_if(workdir: &Path, expected: Option<&str>) -> std::io::Result<Recorded> {
    let Some(sha256) = config_hash(workdir)? else {
        return Ok(Recorded::NoConfig);
    };
    if expected.is_some_and(|e| e != sha256) {
        return Ok(Recorded::Changed);
    }
    let path = store_path().ok_or_else(|| {
        std::io::Error::other("neither XDG_CONFIG_HOME nor HOME is set: nowhere to record trust")
    })?;
    let _writing = STORE_WRITE.lock().unwrap_or_else(|e| e.into_inner());
    let mut store = read_store(&path);
    store.insert(
        key(workdir),
        Trusted {
            sha256: sha256.clone(),
            at: chrono::Utc::now(),
        },
    );
    write_store(&path, &store)?;
    Ok(Recorded::Trusted(sha256))
}

/// Forgets the user's trust in the repository's configuration.
pub fn revoke(workdir: &Path) -> std::io::Result<bool> {
    let Some(path) = store_path() else {
        return Ok(false);
    };
    let _writing = STORE_WRITE.lock().unwrap_or_else(|e| e.into_inner());
    let mut store = read_store(&path);
    let removed = store.remove(&key(workdir)).is_some();
    if removed {
        write_store(&path, &store)?;
    }
    Ok(removed)
}

fn write_store(path: &Path, store: &BTreeMap<String, Trusted>) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut bytes = serde_json::to_vec_pretty(store).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    crate::engine::store::write_atomic(path, &bytes).map_err(std::io::Error::other)
}

/// In unit tests only: a repository with this file is trusted, so that tests need not
/// write the user's own trust store.
#[cfg(test)]
const TEST_MARKER: &str = ".git/handoff-trusted-for-tests";

/// Trusts a unit test's repository (see [`TEST_MARKER`]).
#[cfg(test)]
pub fn trust_for_tests(workdir: &Path) {
    std::fs::write(workdir.join(TEST_MARKER), b"").expect("a test repository");
}

/// Takes back [`trust_for_tests`].
#[cfg(test)]
pub fn untrust_for_tests(workdir: &Path) {
    std::fs::remove_file(workdir.join(TEST_MARKER)).expect("a trusted test repository");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_covers_the_config_file_and_the_handoff_folder() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(config_hash(dir.path()).unwrap(), None);
        std::fs::write(dir.path().join(".handoff.toml"), "max_parallel = 2\n").unwrap();
        let one = config_hash(dir.path()).unwrap().unwrap();
        std::fs::create_dir_all(dir.path().join(".handoff")).unwrap();
        std::fs::write(dir.path().join(".handoff/Dockerfile"), "FROM x\n").unwrap();
        let two = config_hash(dir.path()).unwrap().unwrap();
        assert_ne!(one, two);
        std::fs::write(dir.path().join(".handoff/Dockerfile"), "FROM y\n").unwrap();
        assert_ne!(config_hash(dir.path()).unwrap().unwrap(), two);
    }

    #[test]
    fn the_hash_covers_the_dev_container_and_the_dockerfile_it_builds() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mut seen = vec![];
        let mut changed = |what: &str| {
            let hash = config_hash(d).unwrap();
            assert!(hash.is_some(), "{what}: no configuration seen");
            assert!(!seen.contains(&hash), "{what} did not change the hash");
            seen.push(hash);
        };
        std::fs::create_dir(d.join(".devcontainer")).unwrap();
        std::fs::write(d.join(".devcontainer/notes.md"), "# notes\n").unwrap();
        assert_eq!(
            config_hash(d).unwrap(),
            None,
            "a .devcontainer/ without the file Handoff reads is not configuration"
        );
        std::fs::write(d.join(".devcontainer.json"), r#"{"image": "x"}"#).unwrap();
        changed(".devcontainer.json alone");
        std::fs::write(
            d.join(".devcontainer/devcontainer.json"),
            r#"{"build": {"dockerfile": "../Dockerfile", "context": ".."}}"#,
        )
        .unwrap();
        changed(".devcontainer/devcontainer.json");
        std::fs::write(d.join("Dockerfile"), "FROM x\n").unwrap();
        changed("the Dockerfile it builds, outside .devcontainer/");
        std::fs::write(d.join(".devcontainer/setup.sh"), "make\n").unwrap();
        changed("any file under .devcontainer/");
        assert_eq!(
            config_files(d),
            [
                PathBuf::from(".devcontainer/devcontainer.json"),
                ".devcontainer/notes.md".into(),
                ".devcontainer/setup.sh".into(),
                ".devcontainer.json".into(),
                "Dockerfile".into(),
            ]
        );
        // A linked folder is not walked.
        let elsewhere = tempfile::tempdir().unwrap();
        std::fs::write(elsewhere.path().join("secret"), "x").unwrap();
        std::fs::remove_dir_all(d.join(".devcontainer")).unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), d.join(".devcontainer")).unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), d.join(".handoff")).unwrap();
        assert_eq!(config_files(d), [PathBuf::from(".devcontainer.json")]);
    }
}
