//! A task's start layer: what differs between a shared base checkout and the commit
//! the task starts from (the snapshot of the user's uncommitted work, or the task
//! branch for a follow-up), as an overlay layer that sits on the base. It holds the
//! changed files, a whiteout for each deleted path, and the `.git` pieces that make the
//! agent's repository say it is on the task branch at that commit: `HEAD`, the
//! branch ref, an index, and a pack of the commits the base lacks.
//!
//! Its cost is the size of that difference, plus one copy of the index.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use git2::{IndexEntry, IndexTime, Oid, Repository, Tree};

use super::base::{write_history_pack, Base};
use super::split_index;
use super::GitError;

/// How deleted paths are marked for overlayfs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whiteouts {
    /// A character device 0/0, what overlayfs itself writes; needs CAP_MKNOD (root).
    Device,
    /// An empty file with the `user.overlay.whiteout` attribute in a folder marked
    /// `user.overlay.opaque = x` (Linux ≥ 6.7, overlays mounted with `userxattr`):
    /// what an ordinary user can make.
    Xattr,
}

impl Whiteouts {
    /// The kind this process can make.
    pub fn for_this_process() -> Whiteouts {
        if rustix::process::geteuid().is_root() {
            Whiteouts::Device
        } else {
            Whiteouts::Xattr
        }
    }
}

/// What a start layer holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerStats {
    pub files: usize,
    pub deleted: usize,
}

/// Writes into `dir` (created, must not exist) the layer that turns `base` into
/// `start` on branch `branch`, owned by `owner`.
pub fn build(
    user: &Repository,
    base: &Base,
    start: Oid,
    branch: &str,
    dir: &Path,
    owner: (u32, u32),
    whiteouts: Whiteouts,
) -> Result<LayerStats, GitError> {
    let mut writer = LayerWriter {
        user,
        root: dir.to_path_buf(),
        owner,
        whiteouts,
        stats: LayerStats::default(),
        index_changes: Vec::new(),
    };
    writer.mkdir(dir)?;
    let old = user.find_commit(base.commit)?.tree()?;
    let new = user.find_commit(start)?.tree()?;
    writer.compare(Some(&old), Some(&new), &mut Vec::new())?;

    // The repository pieces: on the branch, at `start`, with the commits the base lacks.
    let git_dir = dir.join(".git");
    writer.mkdir(&git_dir)?;
    let cut = write_history_pack(
        user,
        &git_dir.join("objects/pack"),
        start,
        Some(base.commit),
    )?;
    if !cut.is_empty() {
        let mut shallow =
            std::fs::read_to_string(base.tree.join(".git/shallow")).unwrap_or_default();
        for c in cut {
            shallow.push_str(&format!("{c}\n"));
        }
        writer.file(&git_dir.join("shallow"), shallow.as_bytes(), false)?;
    }
    writer.file(
        &git_dir.join("HEAD"),
        format!("ref: refs/heads/{branch}\n").as_bytes(),
        false,
    )?;
    let ref_path = git_dir.join("refs/heads").join(branch);
    writer.mkdirs_to(&ref_path)?;
    writer.file(&ref_path, format!("{start}\n").as_bytes(), false)?;
    writer.write_index(&base.tree.join(".git"), &git_dir.join("index"))?;
    writer.chown_tree_dirs()?;
    Ok(writer.stats)
}

enum IndexChange {
    Remove {
        path: Vec<u8>,
        dir: bool,
    },
    Add {
        path: Vec<u8>,
        id: Oid,
        mode: u32,
        file: PathBuf,
    },
}

struct LayerWriter<'r> {
    user: &'r Repository,
    root: PathBuf,
    owner: (u32, u32),
    whiteouts: Whiteouts,
    stats: LayerStats,
    index_changes: Vec<IndexChange>,
}

fn is_tree(mode: i32) -> bool {
    mode == 0o040000
}

impl LayerWriter<'_> {
    fn path_of(&self, rel: &[u8]) -> PathBuf {
        self.root.join(std::ffi::OsStr::from_bytes(rel))
    }

    /// Writes what differs between `old` and `new` (trees at `prefix`).
    fn compare(
        &mut self,
        old: Option<&Tree<'_>>,
        new: Option<&Tree<'_>>,
        prefix: &mut Vec<u8>,
    ) -> Result<(), GitError> {
        let mut names: Vec<Vec<u8>> = Vec::new();
        for t in [old, new].into_iter().flatten() {
            for e in t.iter() {
                names.push(e.name_bytes().to_vec());
            }
        }
        names.sort();
        names.dedup();
        for name in names {
            let o = old.and_then(|t| t.get_name_bytes(&name));
            let n = new.and_then(|t| t.get_name_bytes(&name));
            let len = prefix.len();
            if !prefix.is_empty() {
                prefix.push(b'/');
            }
            prefix.extend_from_slice(&name);
            match (o, n) {
                (Some(o), Some(n)) if o.id() == n.id() && o.filemode() == n.filemode() => {}
                (o, Some(n)) if is_tree(n.filemode()) => {
                    let sub_new = self.user.find_tree(n.id())?;
                    let sub_old = match &o {
                        Some(o) if is_tree(o.filemode()) => Some(self.user.find_tree(o.id())?),
                        _ => None,
                    };
                    let here = self.path_of(prefix);
                    if let Some(o) = &o {
                        if !is_tree(o.filemode()) {
                            self.index_changes.push(IndexChange::Remove {
                                path: prefix.clone(),
                                dir: false,
                            });
                        }
                    }
                    self.mkdir(&here)?;
                    self.compare(sub_old.as_ref(), Some(&sub_new), prefix)?;
                }
                (o, Some(n)) => {
                    if let Some(o) = &o {
                        self.index_changes.push(IndexChange::Remove {
                            path: prefix.clone(),
                            dir: is_tree(o.filemode()),
                        });
                    }
                    self.blob(prefix, n.id(), n.filemode())?;
                }
                (Some(o), None) => {
                    self.whiteout(prefix)?;
                    self.index_changes.push(IndexChange::Remove {
                        path: prefix.clone(),
                        dir: is_tree(o.filemode()),
                    });
                }
                (None, None) => {}
            }
            prefix.truncate(len);
        }
        Ok(())
    }

    /// Writes one entry of the start tree: a file, an executable, a symlink; a
    /// submodule stays the empty folder the base has.
    fn blob(&mut self, rel: &[u8], id: Oid, mode: i32) -> Result<(), GitError> {
        let path = self.path_of(rel);
        self.mkdirs_to(&path)?;
        match mode {
            0o120000 => {
                let blob = self.user.find_blob(id)?;
                let target = std::ffi::OsStr::from_bytes(blob.content());
                std::os::unix::fs::symlink(target, &path).map_err(|source| GitError::Write {
                    path: path.clone(),
                    source,
                })?;
                let _ = std::os::unix::fs::lchown(&path, Some(self.owner.0), Some(self.owner.1));
            }
            0o100644 | 0o100755 => {
                let blob = self.user.find_blob(id)?;
                self.file(&path, blob.content(), mode == 0o100755)?;
            }
            _ => return Ok(()),
        }
        self.stats.files += 1;
        self.index_changes.push(IndexChange::Add {
            path: rel.to_vec(),
            id,
            mode: mode as u32,
            file: path,
        });
        Ok(())
    }

    fn whiteout(&mut self, rel: &[u8]) -> Result<(), GitError> {
        let path = self.path_of(rel);
        self.mkdirs_to(&path)?;
        let failed = |source: std::io::Error| GitError::Write {
            path: path.clone(),
            source,
        };
        match self.whiteouts {
            Whiteouts::Device => rustix::fs::mknodat(
                rustix::fs::CWD,
                &path,
                rustix::fs::FileType::CharacterDevice,
                rustix::fs::Mode::from_raw_mode(0o600),
                0,
            )
            .map_err(|e| failed(e.into()))?,
            Whiteouts::Xattr => {
                std::fs::write(&path, b"").map_err(failed)?;
                rustix::fs::setxattr(
                    &path,
                    "user.overlay.whiteout",
                    b"",
                    rustix::fs::XattrFlags::empty(),
                )
                .map_err(|e| failed(e.into()))?;
                let parent = path.parent().unwrap_or(&self.root);
                rustix::fs::setxattr(
                    parent,
                    "user.overlay.opaque",
                    b"x",
                    rustix::fs::XattrFlags::empty(),
                )
                .map_err(|e| failed(e.into()))?;
            }
        }
        self.stats.deleted += 1;
        Ok(())
    }

    fn mkdir(&self, path: &Path) -> Result<(), GitError> {
        match std::fs::create_dir(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(source) => Err(GitError::Write {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    fn mkdirs_to(&self, file: &Path) -> Result<(), GitError> {
        let parent = file.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(parent).map_err(|source| GitError::Write {
            path: parent.to_path_buf(),
            source,
        })
    }

    fn file(&self, path: &Path, bytes: &[u8], executable: bool) -> Result<(), GitError> {
        use std::os::unix::fs::OpenOptionsExt;
        let failed = |source| GitError::Write {
            path: path.to_path_buf(),
            source,
        };
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(if executable { 0o755 } else { 0o644 })
            .open(path)
            .map_err(failed)?;
        std::io::Write::write_all(&mut f, bytes).map_err(failed)?;
        if rustix::process::geteuid().as_raw() != self.owner.0 {
            std::os::unix::fs::fchown(&f, Some(self.owner.0), Some(self.owner.1))
                .map_err(failed)?;
        }
        Ok(())
    }

    /// The base's index with this layer's changes, stat data taken from the files
    /// written here (the agent sees them through the overlay with the same times and
    /// sizes, which is all `core.checkStat = minimal` compares).
    ///
    /// A base that keeps its index as a shared index gets a split index here: only
    /// the changed entries ([`split_index`]). Otherwise the whole index is copied and
    /// changed.
    fn write_index(&mut self, base_git_dir: &Path, to: &Path) -> Result<(), GitError> {
        if let Some((base_bytes, _)) = split_index::base_shared_index(base_git_dir) {
            let mut changes = split_index::Changes::default();
            for change in &self.index_changes {
                match change {
                    IndexChange::Remove { path, dir } => changes.removed.push((path.clone(), *dir)),
                    IndexChange::Add {
                        path,
                        id,
                        mode,
                        file,
                    } => {
                        let meta =
                            std::fs::symlink_metadata(file).map_err(|source| GitError::Read {
                                path: file.clone(),
                                source,
                            })?;
                        changes.put.push(split_index::Entry {
                            path: path.clone(),
                            id: *id,
                            mode: *mode,
                            stat: split_index::Stat::of(&meta),
                        });
                    }
                }
            }
            if split_index::write(to, &base_bytes, changes)?.is_some() {
                self.index_changes.clear();
                return Ok(());
            }
        }
        let base_index = base_git_dir.join("index");
        std::fs::copy(&base_index, to).map_err(|source| GitError::Write {
            path: to.to_path_buf(),
            source,
        })?;
        let mut index = git2::Index::open(to)?;
        for change in std::mem::take(&mut self.index_changes) {
            match change {
                IndexChange::Remove { path, dir } => {
                    let p = Path::new(std::ffi::OsStr::from_bytes(&path));
                    if dir {
                        index.remove_dir(p, 0)?;
                    } else {
                        let _ = index.remove_path(p);
                    }
                }
                IndexChange::Add {
                    path,
                    id,
                    mode,
                    file,
                } => {
                    let meta =
                        std::fs::symlink_metadata(&file).map_err(|source| GitError::Read {
                            path: file.clone(),
                            source,
                        })?;
                    index.add(&IndexEntry {
                        ctime: IndexTime::new(meta.ctime() as i32, meta.ctime_nsec() as u32),
                        mtime: IndexTime::new(meta.mtime() as i32, meta.mtime_nsec() as u32),
                        dev: meta.dev() as u32,
                        ino: meta.ino() as u32,
                        mode,
                        uid: meta.uid(),
                        gid: meta.gid(),
                        file_size: meta.len() as u32,
                        id,
                        flags: 0,
                        flags_extended: 0,
                        path,
                    })?;
                }
            }
        }
        index.write()?;
        Ok(())
    }

    /// Gives the layer's folders (and the `.git` pieces) to the agent's uid.
    fn chown_tree_dirs(&self) -> Result<(), GitError> {
        if rustix::process::geteuid().as_raw() == self.owner.0 {
            return Ok(());
        }
        fn walk(dir: &Path, owner: (u32, u32)) -> std::io::Result<()> {
            std::os::unix::fs::lchown(dir, Some(owner.0), Some(owner.1))?;
            for entry in std::fs::read_dir(dir)? {
                let entry = entry?;
                let t = entry.file_type()?;
                if t.is_dir() {
                    walk(&entry.path(), owner)?;
                } else if t.is_file() || t.is_symlink() {
                    std::os::unix::fs::lchown(entry.path(), Some(owner.0), Some(owner.1))?;
                }
            }
            Ok(())
        }
        walk(&self.root, self.owner).map_err(|source| GitError::Write {
            path: self.root.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::base;
    use crate::git::test_support::{commit_all, me, repo_with};

    #[test]
    fn a_layer_holds_only_what_differs_and_marks_deletions() {
        let (dir, user) = repo_with(&[
            ("same.txt", "same\n"),
            ("changed.txt", "old\n"),
            ("gone.txt", "gone\n"),
            ("dir/gone/deep.txt", "x\n"),
            ("dir/keep.txt", "keep\n"),
            ("becomes-dir", "file\n"),
        ]);
        let base_commit = user.head().unwrap().target().unwrap();
        std::fs::write(dir.path().join("changed.txt"), "new\n").unwrap();
        std::fs::remove_file(dir.path().join("gone.txt")).unwrap();
        std::fs::remove_dir_all(dir.path().join("dir/gone")).unwrap();
        std::fs::remove_file(dir.path().join("becomes-dir")).unwrap();
        std::fs::create_dir(dir.path().join("becomes-dir")).unwrap();
        std::fs::write(dir.path().join("becomes-dir/inner.txt"), "in\n").unwrap();
        std::os::unix::fs::symlink("same.txt", dir.path().join("link")).unwrap();
        let start = commit_all(&user, "snapshot");

        let tmp = tempfile::tempdir().unwrap();
        let b = base::ensure(&user, &tmp.path().join("bases"), base_commit, me()).unwrap();
        let layer = tmp.path().join("layer");
        let stats = build(
            &user,
            &b,
            start,
            "handoff/1-x",
            &layer,
            me(),
            Whiteouts::for_this_process(),
        )
        .unwrap();
        assert_eq!(stats.files, 3, "changed.txt, becomes-dir/inner.txt, link");
        assert_eq!(stats.deleted, 2, "gone.txt and dir/gone");
        assert!(!layer.join("same.txt").exists());
        assert_eq!(
            std::fs::read_to_string(layer.join("changed.txt")).unwrap(),
            "new\n"
        );
        assert_eq!(
            std::fs::read_link(layer.join("link")).unwrap(),
            Path::new("same.txt")
        );
        let gone = std::fs::symlink_metadata(layer.join("gone.txt")).unwrap();
        let dir_gone = std::fs::symlink_metadata(layer.join("dir/gone")).unwrap();
        if Whiteouts::for_this_process() == Whiteouts::Device {
            use std::os::unix::fs::FileTypeExt;
            assert!(gone.file_type().is_char_device() && gone.rdev() == 0);
            assert!(dir_gone.file_type().is_char_device());
        }
        assert!(!layer.join("dir/keep.txt").exists());
        assert_eq!(
            std::fs::read_to_string(layer.join(".git/HEAD")).unwrap(),
            "ref: refs/heads/handoff/1-x\n"
        );
        assert_eq!(
            std::fs::read_to_string(layer.join(".git/refs/heads/handoff/1-x")).unwrap(),
            format!("{start}\n")
        );
        // The index describes the start tree: a split index over the base's, which
        // the agent's git reads as the whole (checked with git itself, on the two
        // layers merged as the overlay shows them).
        let index = std::fs::read(layer.join(".git/index")).unwrap();
        assert!(
            index.windows(4).any(|w| w == b"link"),
            "a split index linked to the base's"
        );
        assert!(
            index.len() < 1024,
            "only the changed entries: {} bytes",
            index.len()
        );
        let merged = tmp.path().join("merged");
        merge_like_overlay(&b.tree, &layer, &merged);
        let git = |args: &[&str], dir: &Path| crate::git::test_support::git_cli(dir, args);
        let listed: Vec<String> = git(&["ls-files", "-s"], &merged)
            .lines()
            .map(|l| l.replace(" 0\t", "\t"))
            .collect();
        let tree: Vec<String> = git(&["ls-tree", "-r", &start.to_string()], dir.path())
            .lines()
            .map(|l| l.replace(" blob ", " "))
            .collect();
        assert_eq!(listed, tree, "the agent's index holds the start tree");
        // Every object of the start's history is there (the base's pack and the
        // layer's): git fails on any one missing.
        git(&["rev-list", "--objects", "HEAD"], &merged);
        git(&["fsck", "--no-dangling", "--connectivity-only"], &merged);
        assert_eq!(
            git(&["status", "--porcelain"], &merged),
            "",
            "and a clean tree"
        );
        assert_eq!(
            git(&["rev-parse", "HEAD"], &merged).trim(),
            start.to_string()
        );
        // The agent's git keeps working on it: a change staged and committed.
        std::fs::write(merged.join("same.txt"), "edited\n").unwrap();
        git(&["add", "same.txt"], &merged);
        git(
            &[
                "-c",
                "user.name=a",
                "-c",
                "user.email=a@b",
                "commit",
                "-qm",
                "agent",
            ],
            &merged,
        );
        assert_eq!(git(&["status", "--porcelain"], &merged), "");
        // The snapshot commit is in the layer's pack.
        let packs: Vec<_> = std::fs::read_dir(layer.join(".git/objects/pack"))
            .unwrap()
            .collect();
        assert_eq!(packs.len(), 2, "one pack and its index");
        // It holds what the base lacks, not the snapshot's whole tree again.
        let odb = git2::Odb::new().unwrap();
        odb.add_disk_alternate(layer.join(".git/objects").to_str().unwrap())
            .unwrap();
        let blob = |path: &str| {
            user.revparse_single(&format!("{start}:{path}"))
                .unwrap()
                .id()
        };
        assert!(odb.exists(start));
        assert!(odb.exists(blob("changed.txt")));
        assert!(!odb.exists(blob("same.txt")), "the base's pack has it");
    }

    /// Copies `base` to `to` and lays `layer` over it as overlayfs would show them:
    /// whiteouts (devices 0/0, or files marked `user.overlay.whiteout`) delete.
    fn merge_like_overlay(base: &Path, layer: &Path, to: &Path) {
        let status = std::process::Command::new("cp")
            .args(["-a"])
            .arg(base)
            .arg(to)
            .status()
            .unwrap();
        assert!(status.success());
        fn lay(from: &Path, to: &Path) {
            for item in std::fs::read_dir(from).unwrap() {
                let item = item.unwrap();
                let (src, dst) = (item.path(), to.join(item.file_name()));
                let meta = std::fs::symlink_metadata(&src).unwrap();
                let whiteout = {
                    use std::os::unix::fs::FileTypeExt;
                    meta.file_type().is_char_device()
                        || rustix::fs::lgetxattr(&src, "user.overlay.whiteout", &mut [0u8; 8])
                            .is_ok()
                };
                let existing = std::fs::symlink_metadata(&dst).ok();
                if whiteout || (existing.as_ref().is_some_and(|m| m.is_dir()) != meta.is_dir()) {
                    match existing {
                        Some(m) if m.is_dir() => std::fs::remove_dir_all(&dst).unwrap(),
                        Some(_) => std::fs::remove_file(&dst).unwrap(),
                        None => {}
                    }
                }
                if whiteout {
                    continue;
                }
                if meta.is_dir() {
                    std::fs::create_dir_all(&dst).unwrap();
                    lay(&src, &dst);
                } else {
                    let _ = std::fs::remove_file(&dst);
                    if meta.file_type().is_symlink() {
                        std::os::unix::fs::symlink(std::fs::read_link(&src).unwrap(), &dst)
                            .unwrap();
                    } else {
                        std::fs::copy(&src, &dst).unwrap();
                    }
                }
            }
        }
        lay(layer, to);
    }
}
