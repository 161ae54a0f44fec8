//! Resolving a Python agent CLI with pip on the host: its wheels and its dependencies'
//! for the base image's Python (3.11, glibc x86-64), into a folder of the build
//! context. pip runs here, not in the image (the build has no network); its downloads
//! are kept per package spec, so `--offline` builds from them alone.

use std::path::{Path, PathBuf};

use super::ImageError;

/// The Python the base image has (Debian bookworm's), whose wheels are fetched.
pub const PYTHON_VERSION: &str = "3.11";

/// `$HANDOFF_PIP_CACHE`, else `~/.cache/handoff/pip`.
pub fn default_cache() -> PathBuf {
    if let Some(dir) = std::env::var_os("HANDOFF_PIP_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".cache/handoff/pip")
}

/// The folder of `spec`'s wheels in the cache.
fn wheels_dir(cache: &Path, spec: &str) -> PathBuf {
    let name: String = spec
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-=".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    cache.join(name)
}

/// Wheels of `spec` and its dependencies in a folder, downloaded unless cached (or
/// `offline`, which only uses the cache). Returns the folder.
pub async fn download(
    spec: &str,
    cache: &Path,
    offline: bool,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<PathBuf, ImageError> {
    let dir = wheels_dir(cache, spec);
    let done = dir.join(".complete");
    if done.exists() {
        progress(&format!(
            "{spec}: wheels from the cache at {}",
            dir.display()
        ));
        return Ok(dir);
    }
    if offline {
        return Err(ImageError::PipNotCached {
            spec: spec.to_string(),
            cache: cache.to_path_buf(),
        });
    }
    std::fs::create_dir_all(&dir).map_err(super::io_err("cannot create", &dir))?;
    progress(&format!(
        "{spec}: pip download (python {PYTHON_VERSION}, manylinux x86-64)"
    ));
    let mut cmd = tokio::process::Command::new("python3");
    cmd.args([
        "-m",
        "pip",
        "download",
        "--quiet",
        "--disable-pip-version-check",
    ])
    .args(["--dest"])
    .arg(&dir)
    .args(["--python-version", PYTHON_VERSION, "--only-binary=:all:"])
    .args(["--implementation", "cp"])
    .args([
        "--platform",
        "manylinux2014_x86_64",
        "--platform",
        "manylinux_2_17_x86_64",
        "--platform",
        "manylinux_2_28_x86_64",
        "--platform",
        "any",
    ])
    .arg(spec);
    let out = cmd.output().await.map_err(|_| ImageError::PipMissing)?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr);
        if said.contains("No module named pip") {
            return Err(ImageError::PipMissing);
        }
        return Err(ImageError::Pip {
            spec: spec.to_string(),
            message: said
                .lines()
                .rev()
                .take(12)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n"),
        });
    }
    std::fs::write(&done, b"").map_err(super::io_err("cannot write", &done))?;
    Ok(dir)
}
