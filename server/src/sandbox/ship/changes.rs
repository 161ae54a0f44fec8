//! What to fetch from an ended container: the engine's list of changed paths
//! (`GET /containers/{id}/changes`, relative to the workspace's image) turned into a
//! few archive requests that cover every changed path below `/workspace`.
//!
//! Pure: no I/O. The list is hostile input (the agent chose the names): names are
//! checked, counts bounded.

use std::collections::BTreeSet;

use super::unpack::components;
use super::ShipError;

/// A change as the engine reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Modified,
    Added,
    Deleted,
}

/// Where the agent's workspace is in the container.
pub const WORKSPACE_IN_CONTAINER: &str = "/workspace";

/// What to bring back.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Workspace-relative paths to fetch (each one archive request); `""` is the
    /// whole workspace. Together they cover every path of `wanted`.
    pub fetch: Vec<String>,
    /// Workspace-relative paths added or modified: what is kept of the fetched
    /// archives. Compared as the engine names them (lossy UTF-8).
    pub wanted: BTreeSet<String>,
    /// Workspace-relative paths deleted (topmost only).
    pub deleted: Vec<String>,
}

/// The plan for `changes`, in at most `max_fetches` requests (fewer requests fetch
/// wider folders, and what was not changed is dropped as it streams by).
pub fn plan(
    changes: &[(String, Kind)],
    max_fetches: usize,
    max_entries: usize,
) -> Result<Plan, ShipError> {
    let prefix = format!("{WORKSPACE_IN_CONTAINER}/");
    let mut list: Vec<(String, Kind)> = Vec::new();
    for (path, kind) in changes {
        let Some(rel) = path.strip_prefix(&prefix) else {
            continue;
        };
        if rel.is_empty() {
            continue;
        }
        components(rel.as_bytes())?;
        list.push((rel.trim_end_matches('/').to_string(), *kind));
        if list.len() > max_entries {
            return Err(ShipError::Refused(format!(
                "the agent changed more than {max_entries} paths"
            )));
        }
    }
    list.sort();
    list.dedup_by(|a, b| a.0 == b.0);
    let mut plan = Plan::default();
    let has_below = |i: usize| {
        let below = format!("{}/", list[i].0);
        list.get(i + 1).is_some_and(|(p, _)| p.starts_with(&below))
    };
    let mut covered: Option<String> = None;
    let mut deleted_above: Option<String> = None;
    let mut fetch: BTreeSet<String> = BTreeSet::new();
    for (i, (path, kind)) in list.iter().enumerate() {
        match kind {
            Kind::Deleted => {
                let under = deleted_above
                    .as_ref()
                    .is_some_and(|d| path.starts_with(&format!("{d}/")));
                if !under {
                    plan.deleted.push(path.clone());
                    deleted_above = Some(path.clone());
                }
            }
            Kind::Added | Kind::Modified => {
                plan.wanted.insert(path.clone());
                let inside = covered
                    .as_ref()
                    .is_some_and(|c| path.starts_with(&format!("{c}/")));
                if inside {
                    continue;
                }
                if has_below(i) {
                    // A folder: an added one is fetched whole; a modified one holds
                    // changes of its own, listed after it.
                    if *kind == Kind::Added {
                        fetch.insert(fetchable(path));
                        covered = Some(path.clone());
                    }
                } else {
                    fetch.insert(fetchable(path));
                }
            }
        }
    }
    // Fewer, wider requests: raise every path to its folder until they are few.
    while fetch.len() > max_fetches.max(1) {
        fetch = fetch.iter().map(|p| parent(p)).collect();
        fetch = without_nested(fetch);
    }
    plan.fetch = without_nested(fetch).into_iter().collect();
    Ok(plan)
}

/// A path the archive endpoint can be asked for: the engine reports names that are
/// not UTF-8 with replacement characters, which name nothing; their folder does.
fn fetchable(path: &str) -> String {
    let mut p = path.to_string();
    while p.contains('\u{FFFD}') {
        p = parent(&p);
    }
    p
}

fn parent(path: &str) -> String {
    match path.rsplit_once('/') {
        Some((p, _)) => p.to_string(),
        None => String::new(),
    }
}

/// Drops every path that lies inside another of the set.
fn without_nested(set: BTreeSet<String>) -> BTreeSet<String> {
    if set.contains("") {
        return BTreeSet::from([String::new()]);
    }
    let mut out: BTreeSet<String> = BTreeSet::new();
    for p in set {
        let nested = out.iter().any(|o| p.starts_with(&format!("{o}/")));
        if !nested {
            out.insert(p);
        }
    }
    out
}

/// The workspace-relative path of an entry named `name` in the archive fetched for
/// `fetched` (archive names start with the fetched path's last component): empty for
/// the workspace folder itself (the first entry of the whole workspace's archive),
/// `None` for a name outside what was fetched.
pub fn entry_path(fetched: &str, name: &[u8]) -> Option<Vec<u8>> {
    let name = name.strip_prefix(b"./").unwrap_or(name);
    let mut parts = name.split(|&b| b == b'/').filter(|p| !p.is_empty());
    let first = parts.next()?;
    let expected = match fetched.rsplit_once('/') {
        Some((_, last)) => last,
        None if fetched.is_empty() => "workspace",
        None => fetched,
    };
    if first != expected.as_bytes() && !expected.contains('\u{FFFD}') {
        return None;
    }
    let mut out = fetched.as_bytes().to_vec();
    for part in parts {
        if !out.is_empty() {
            out.push(b'/');
        }
        out.extend_from_slice(part);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(list: &[(&str, Kind)]) -> Vec<(String, Kind)> {
        list.iter().map(|(p, k)| (p.to_string(), *k)).collect()
    }

    #[test]
    fn added_folders_are_fetched_whole_and_modified_ones_by_their_changes() {
        use Kind::*;
        let c = changes(&[
            ("/workspace", Modified),
            ("/workspace/a.txt", Modified),
            ("/workspace/src", Modified),
            ("/workspace/src/new.rs", Added),
            ("/workspace/node_modules", Added),
            ("/workspace/node_modules/x", Added),
            ("/workspace/node_modules/x/index.js", Added),
            ("/workspace/gone", Deleted),
            ("/workspace/gone/deeper", Deleted),
            ("/tmp/elsewhere", Added),
            ("/home/agent/.bash_history", Added),
        ]);
        let p = plan(&c, 16, 1000).unwrap();
        assert_eq!(p.fetch, ["a.txt", "node_modules", "src/new.rs"]);
        assert_eq!(p.deleted, ["gone"]);
        assert!(p.wanted.contains("node_modules/x/index.js"));
        assert!(p.wanted.contains("src"));
        assert!(!p.wanted.contains("gone"));
    }

    #[test]
    fn many_changes_are_fetched_through_their_folders() {
        let mut list = vec![];
        for d in 0..5 {
            for f in 0..10 {
                list.push((format!("/workspace/d{d}/f{f}"), Kind::Modified));
            }
        }
        let p = plan(&list, 8, 1000).unwrap();
        assert_eq!(p.fetch, ["d0", "d1", "d2", "d3", "d4"]);
        let p = plan(&list, 2, 1000).unwrap();
        assert_eq!(p.fetch, [""]);
        assert_eq!(p.wanted.len(), 50);
    }

    #[test]
    fn hostile_names_and_floods_are_refused() {
        let bad = changes(&[("/workspace/../etc/passwd", Kind::Added)]);
        assert!(plan(&bad, 8, 10).is_err());
        let flood: Vec<(String, Kind)> = (0..20)
            .map(|i| (format!("/workspace/f{i}"), Kind::Added))
            .collect();
        assert!(plan(&flood, 8, 10).is_err());
        // A name the engine could not say in UTF-8 is fetched through its folder.
        let odd = changes(&[("/workspace/dir/caf\u{FFFD}", Kind::Added)]);
        assert_eq!(plan(&odd, 8, 10).unwrap().fetch, ["dir"]);
    }

    #[test]
    fn archive_names_map_back_to_workspace_paths() {
        assert_eq!(entry_path("src/a.rs", b"a.rs").unwrap(), b"src/a.rs");
        assert_eq!(entry_path("src", b"src/x/y").unwrap(), b"src/x/y");
        assert_eq!(entry_path("", b"workspace/x").unwrap(), b"x");
        assert_eq!(entry_path("", b"workspace/").unwrap(), b"");
        assert_eq!(entry_path("", b"other"), None);
        assert_eq!(entry_path("src", b"other/x"), None);
    }
}
