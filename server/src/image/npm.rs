//! Resolving an agent CLI with npm on the host, into a folder of the build context.
//!
//! npm runs here, not in the image: the Docker build has no network, and npm's cache
//! (`--offline`, or `--prefer-offline` which asks the registry only for what the cache
//! lacks) is what makes air-gapped hosts work. Install scripts never run; the native
//! binaries come as platform packages chosen by `--os/--cpu/--libc`.

use std::path::{Path, PathBuf};

use super::ImageError;

/// `$HANDOFF_NPM_CACHE`, else `~/.cache/handoff/npm`.
pub fn default_cache() -> PathBuf {
    if let Some(dir) = std::env::var_os("HANDOFF_NPM_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".cache/handoff/npm")
}

/// The arguments of `npm`, for one package spec.
pub fn install_args(spec: &str, prefix: &Path, cache: &Path, offline: bool) -> Vec<String> {
    let mut args: Vec<String> = vec!["install".into(), "--prefix".into()];
    args.push(prefix.display().to_string());
    args.push("--cache".into());
    args.push(cache.display().to_string());
    for flag in [
        "--ignore-scripts",
        "--no-audit",
        "--no-fund",
        "--no-update-notifier",
        "--os=linux",
        "--cpu=x64",
        "--libc=glibc",
        // Only the native binaries are used, so npm's warnings about the host's Node
        // version (EBADENGINE) are noise; errors still show.
        "--loglevel=error",
        if offline {
            "--offline"
        } else {
            "--prefer-offline"
        },
    ] {
        args.push(flag.into());
    }
    args.push(spec.into());
    args
}

/// Installs `spec` under `prefix` (creating `prefix/node_modules`).
pub async fn install(
    spec: &str,
    prefix: &Path,
    cache: &Path,
    offline: bool,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<(), ImageError> {
    let args = install_args(spec, prefix, cache, offline);
    progress(&format!(
        "resolving {spec} with npm ({}, cache {})",
        if offline {
            "offline"
        } else {
            "registry if needed"
        },
        cache.display()
    ));
    let output = tokio::process::Command::new("npm")
        .args(&args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ImageError::NpmMissing,
            _ => ImageError::Npm {
                spec: spec.to_string(),
                message: e.to_string(),
            },
        })?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        if stderr.contains("ENOTCACHED") {
            return Err(ImageError::NpmNotCached {
                spec: spec.to_string(),
                cache: cache.to_path_buf(),
            });
        }
        return Err(ImageError::Npm {
            spec: spec.to_string(),
            message: tail(&stderr, 15),
        });
    }
    for line in String::from_utf8_lossy(&output.stdout)
        .lines()
        .chain(stderr.lines())
        .filter(|l| !l.trim().is_empty())
    {
        progress(&format!("npm: {line}"));
    }
    Ok(())
}

/// The last `n` lines of `text`, for error messages.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_forbids_the_registry_and_online_prefers_the_cache() {
        let args = |offline| {
            install_args(
                "@openai/codex@0.169.0",
                Path::new("/p"),
                Path::new("/c"),
                offline,
            )
        };
        let on = args(false);
        let off = args(true);
        assert!(on.contains(&"--prefer-offline".into()) && !on.contains(&"--offline".into()));
        assert!(off.contains(&"--offline".into()) && !off.contains(&"--prefer-offline".into()));
        for a in [&on, &off] {
            assert!(a.contains(&"--ignore-scripts".into()));
            assert_eq!(a.last().unwrap(), "@openai/codex@0.169.0");
            assert_eq!(a[1..5], ["--prefix", "/p", "--cache", "/c"]);
        }
    }

    #[test]
    fn tails_keep_the_last_lines() {
        assert_eq!(tail("a\n\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
    }
}
