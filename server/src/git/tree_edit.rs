//! A tree changed at a few paths, in time that grows with the paths changed, not with
//! the size of the tree: libgit2's tree updates rewrite only the trees on the way to
//! each changed path. (An in-memory index would read the whole tree first — 50 000
//! entries for a one-file change.)
//!
//! libgit2 applies one batch of updates at a time and cannot, in one batch, put a path
//! it removes or change a path between file and folder; so removals go first, then the
//! puts, on the result.

use std::collections::{BTreeMap, HashSet};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use git2::build::TreeUpdateBuilder;
use git2::{FileMode, ObjectType, Oid, Repository, Tree};

use super::GitError;

/// Edits to make to a tree, by path (bytes: names need not be UTF-8). A path removed
/// and put again ends up put.
#[derive(Debug, Default)]
pub struct TreeEdits {
    removes: Vec<Vec<u8>>,
    puts: BTreeMap<Vec<u8>, (Oid, u32)>,
}

impl TreeEdits {
    pub fn new() -> TreeEdits {
        TreeEdits::default()
    }

    /// Removes `path`, a file or a folder with everything in it. Removing what the
    /// tree does not hold is not an error.
    pub fn remove(&mut self, path: &[u8]) {
        self.removes.push(path.to_vec());
    }

    /// Sets `path` to the blob `id` (mode 100644, 100755 or 120000), replacing a file
    /// or a folder there, and a file where one of its folders should be.
    pub fn put(&mut self, path: &[u8], id: Oid, mode: u32) {
        self.puts.insert(path.to_vec(), (id, mode));
    }

    pub fn is_empty(&self) -> bool {
        self.removes.is_empty() && self.puts.is_empty()
    }

    /// Writes the edited tree into `repo` and returns its id (`base`'s own when
    /// nothing changes).
    pub fn apply(self, repo: &Repository, base: &Tree<'_>) -> Result<Oid, GitError> {
        if self.is_empty() {
            return Ok(base.id());
        }
        let kind_in_base = |path: &[u8]| -> Option<ObjectType> {
            base.get_path(Path::new(std::ffi::OsStr::from_bytes(path)))
                .ok()
                .and_then(|e| e.kind())
        };
        // What must go before the puts: what was asked, and what stands in a put's way
        // (a folder where it puts a file, a file where it needs a folder).
        let mut removes: Vec<Vec<u8>> = self.removes;
        for path in self.puts.keys() {
            if kind_in_base(path) == Some(ObjectType::Tree) {
                removes.push(path.clone());
            }
            for (i, _) in path.iter().enumerate().filter(|(_, &b)| b == b'/') {
                let folder = &path[..i];
                match kind_in_base(folder) {
                    Some(ObjectType::Tree) => {}
                    Some(_) => removes.push(folder.to_vec()),
                    None => break,
                }
            }
        }
        removes.sort();
        removes.dedup();
        let mut update = TreeUpdateBuilder::new();
        let mut removed: HashSet<&[u8]> = HashSet::new();
        for path in &removes {
            // A folder's removal takes what is in it; libgit2 refuses to remove a path
            // twice or one that is not there.
            let under_removed = path
                .iter()
                .enumerate()
                .any(|(i, &b)| b == b'/' && removed.contains(&path[..i]));
            if under_removed || kind_in_base(path).is_none() {
                continue;
            }
            update.remove(Path::new(std::ffi::OsStr::from_bytes(path)));
            removed.insert(path);
        }
        let after_removes = match removed.is_empty() {
            true => base.id(),
            false => update.create_updated(repo, base)?,
        };
        if self.puts.is_empty() {
            return Ok(after_removes);
        }
        let after_removes = repo.find_tree(after_removes)?;
        let mut update = TreeUpdateBuilder::new();
        for (path, (id, mode)) in &self.puts {
            let mode = match mode {
                0o100755 => FileMode::BlobExecutable,
                0o120000 => FileMode::Link,
                _ => FileMode::Blob,
            };
            update.upsert(Path::new(std::ffi::OsStr::from_bytes(path)), *id, mode);
        }
        Ok(update.create_updated(repo, &after_removes)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::test_support::repo_with;

    /// Every blob path of a tree with its content, mode and the folders holding it.
    fn listing(repo: &Repository, tree: Oid) -> Vec<String> {
        let tree = repo.find_tree(tree).unwrap();
        let mut out = vec![];
        tree.walk(git2::TreeWalkMode::PreOrder, |dir, e| {
            let name = format!("{dir}{}", e.name().unwrap());
            match e.kind() {
                Some(ObjectType::Blob) => {
                    let blob = repo.find_blob(e.id()).unwrap();
                    out.push(format!(
                        "{name} {:o} {}",
                        e.filemode(),
                        String::from_utf8_lossy(blob.content())
                    ));
                }
                _ => out.push(format!("{name}/")),
            }
            git2::TreeWalkResult::Ok
        })
        .unwrap();
        out
    }

    /// The same edits through an in-memory index, the slow way they replace.
    fn through_index(repo: &Repository, base: &Tree<'_>, edits: &[(&str, Option<&str>)]) -> Oid {
        let mut index = git2::Index::new().unwrap();
        index.read_tree(base).unwrap();
        for (path, content) in edits {
            match content {
                None => {
                    let p = Path::new(path);
                    let _ = index.remove_path(p);
                    let _ = index.remove_dir(p, 0);
                }
                Some(text) => {
                    // As the callers did: a folder in the way goes first.
                    let _ = index.remove_dir(Path::new(path), 0);
                    let id = repo.blob(text.as_bytes()).unwrap();
                    index
                        .add(&git2::IndexEntry {
                            ctime: git2::IndexTime::new(0, 0),
                            mtime: git2::IndexTime::new(0, 0),
                            dev: 0,
                            ino: 0,
                            mode: 0o100644,
                            uid: 0,
                            gid: 0,
                            file_size: 0,
                            id,
                            flags: 0,
                            flags_extended: 0,
                            path: path.as_bytes().to_vec(),
                        })
                        .unwrap();
                }
            }
        }
        index.write_tree_to(repo).unwrap()
    }

    #[test]
    fn edits_give_the_tree_an_index_would_build() {
        let (_d, repo) = repo_with(&[
            ("a.txt", "a\n"),
            ("keep/k.txt", "k\n"),
            ("dir/x.txt", "x\n"),
            ("dir/deep/y.txt", "y\n"),
            ("file-then-dir", "f\n"),
            ("only/one.txt", "1\n"),
            ("z/dir-then-file/inner.txt", "i\n"),
        ]);
        let base = repo.head().unwrap().peel_to_tree().unwrap();
        let cases: Vec<Vec<(&str, Option<&str>)>> = vec![
            vec![],
            vec![("a.txt", Some("changed\n"))],
            vec![("new/deeper/n.txt", Some("n\n"))],
            // The last file of a folder goes: so does the folder.
            vec![("only/one.txt", None)],
            // A whole folder, and a path under it too (with a name sorting between).
            vec![("dir", None), ("dir-x", None), ("dir/deep/y.txt", None)],
            // A folder emptied and filled again (an opaque folder of an overlay).
            vec![("dir", None), ("dir/fresh.txt", Some("fresh\n"))],
            // A file becomes a folder; a folder becomes a file.
            vec![
                ("file-then-dir/inside.txt", Some("in\n")),
                ("z/dir-then-file", Some("now a file\n")),
            ],
            // Removing what is not there.
            vec![("missing.txt", None), ("missing/dir", None)],
        ];
        for edits in cases {
            let mut tree_edits = TreeEdits::new();
            for (path, content) in &edits {
                match content {
                    None => tree_edits.remove(path.as_bytes()),
                    Some(text) => tree_edits.put(
                        path.as_bytes(),
                        repo.blob(text.as_bytes()).unwrap(),
                        0o100644,
                    ),
                }
            }
            let got = tree_edits.apply(&repo, &base).unwrap();
            let want = through_index(&repo, &base, &edits);
            assert_eq!(listing(&repo, got), listing(&repo, want), "edits {edits:?}");
            assert_eq!(got, want, "edits {edits:?}");
        }
    }

    #[test]
    fn modes_are_kept() {
        let (_d, repo) = repo_with(&[("a", "a\n")]);
        let base = repo.head().unwrap().peel_to_tree().unwrap();
        let mut edits = TreeEdits::new();
        let id = repo.blob(b"#!/bin/sh\n").unwrap();
        edits.put(b"run.sh", id, 0o100755);
        edits.put(b"link", repo.blob(b"a").unwrap(), 0o120000);
        let tree = repo.find_tree(edits.apply(&repo, &base).unwrap()).unwrap();
        assert_eq!(tree.get_name("run.sh").unwrap().filemode(), 0o100755);
        assert_eq!(tree.get_name("link").unwrap().filemode(), 0o120000);
        assert_eq!(tree.get_name("a").unwrap().filemode(), 0o100644);
    }
}
