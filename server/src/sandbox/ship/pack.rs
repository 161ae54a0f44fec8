//! What a shipped workspace sends in: the layers above the base merged into one tar
//! (with the agent's HOME, its results folder, the tool cache and the prompt), the
//! paths of the base that must go (deletions the layers make), and the [`Manifest`]
//! of what came from the read-only layers, so that collecting can tell the agent's
//! changes from what was sent. Also the base itself, as an image layer.
//!
//! Runs on the host, blocking. The folders read here were written by Handoff (the
//! base, the start layer) or by a sandbox (an environment's layer, a setup's upper
//! folder, HOME): all are read through [`crate::untrusted`].

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::{Manifest, ShipError};
use crate::untrusted::{EntryKind, UntrustedTree, Visit, WalkLimits};

/// Where each part lands in the container, as tar paths (relative to `/`).
pub const WORKSPACE: &str = "workspace";

/// What one path of the merged layers is, and which layer said so.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    File {
        layer: usize,
    },
    Symlink {
        layer: usize,
    },
    /// `hides_base`: what the base holds below it is gone (an opaque folder, or a
    /// folder where a lower layer deleted the path).
    Dir {
        layer: usize,
        hides_base: bool,
    },
    /// Deleted: the base's entry (if any) goes.
    Gone {
        layer: usize,
    },
}

impl Source {
    fn layer(&self) -> usize {
        match self {
            Source::File { layer }
            | Source::Symlink { layer }
            | Source::Dir { layer, .. }
            | Source::Gone { layer } => *layer,
        }
    }
}

/// The layers above the base, merged as overlayfs would show them: for every path,
/// the topmost layer that has it.
pub struct Merged {
    entries: BTreeMap<Vec<u8>, Source>,
    /// Index of the layer that is the writable upper folder, if it was given: what
    /// came from it is the turn's own work, never taken for "sent in, unchanged".
    upper: Option<usize>,
}

/// Layers bottom first (just above the base); `upper` is the index of the writable
/// one among them, if any.
pub fn merge(layers: &[&UntrustedTree], upper: Option<usize>) -> Result<Merged, ShipError> {
    let mut entries: BTreeMap<Vec<u8>, Source> = BTreeMap::new();
    for (layer, tree) in layers.iter().enumerate() {
        tree.walk(WalkLimits::default(), |e| {
            let path = e.path.clone();
            match &e.kind {
                EntryKind::Whiteout => {
                    remove_below(&mut entries, &path);
                    entries.insert(path, Source::Gone { layer });
                    Visit::Skip
                }
                EntryKind::Dir { opaque } => {
                    let hides = match entries.get(&path) {
                        Some(Source::Dir { hides_base, .. }) => *hides_base || *opaque,
                        // A folder over a deletion or a file of a lower layer: the
                        // base's content there is hidden by that lower layer.
                        Some(_) => true,
                        None => *opaque,
                    };
                    if *opaque {
                        remove_below(&mut entries, &path);
                    }
                    let layer = match entries.get(&path) {
                        // A folder both layers have: it comes from the upper only when
                        // the upper made it opaque.
                        Some(Source::Dir { layer: below, .. }) if !*opaque => *below,
                        _ => layer,
                    };
                    entries.insert(
                        path,
                        Source::Dir {
                            layer,
                            hides_base: hides,
                        },
                    );
                    Visit::Descend
                }
                EntryKind::File { .. } => {
                    remove_below(&mut entries, &path);
                    entries.insert(path, Source::File { layer });
                    Visit::Skip
                }
                EntryKind::Symlink => {
                    remove_below(&mut entries, &path);
                    entries.insert(path, Source::Symlink { layer });
                    Visit::Skip
                }
                EntryKind::Special(what) => {
                    tracing::debug!(path = %String::from_utf8_lossy(&path), what, "left out of a shipped workspace");
                    Visit::Skip
                }
            }
        })
        .map_err(|e| ShipError::Read(e.to_string()))?;
    }
    Ok(Merged { entries, upper })
}

/// Removes every entry strictly below `path`.
fn remove_below(entries: &mut BTreeMap<Vec<u8>, Source>, path: &[u8]) {
    let mut prefix = path.to_vec();
    prefix.push(b'/');
    let below: Vec<Vec<u8>> = entries
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .map(|(k, _)| k.clone())
        .collect();
    for k in below {
        entries.remove(&k);
    }
}

/// The paths of the base (at `base`) that the merged layers delete, relative to the
/// workspace, topmost first; none of them is a path the layers bring (so deleting
/// them after the layers were unpacked removes nothing that was sent), and each is
/// marked in `manifest` when a read-only layer deleted it.
fn deletions(merged: &Merged, base: &Path, manifest: &mut Manifest) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (path, source) in &merged.entries {
        let from_upper = Some(source.layer()) == merged.upper;
        match source {
            Source::Gone { .. } if exists_below(base, path) => {
                if !from_upper {
                    manifest.deleted.insert(Manifest::key(path));
                }
                out.push(path.clone());
            }
            Source::Dir {
                hides_base: true, ..
            } => {
                let Some(dir) = crate::untrusted::join_below(base, path) else {
                    continue;
                };
                let Ok(children) = std::fs::read_dir(&dir) else {
                    continue;
                };
                let mut names: Vec<Vec<u8>> = children
                    .flatten()
                    .map(|c| c.file_name().as_bytes().to_vec())
                    .collect();
                names.sort();
                for name in names {
                    let mut child = path.clone();
                    child.push(b'/');
                    child.extend_from_slice(&name);
                    if !merged.entries.contains_key(&child) {
                        if !from_upper {
                            manifest.deleted.insert(Manifest::key(&child));
                        }
                        out.push(child);
                    }
                }
            }
            _ => {}
        }
    }
    out
}

fn exists_below(base: &Path, rel: &[u8]) -> bool {
    crate::untrusted::join_below(base, rel).is_some_and(|p| std::fs::symlink_metadata(p).is_ok())
}

/// Writes tar entries, every one owned as asked.
pub struct TarOut<W: Write> {
    builder: tar::Builder<W>,
    now: u64,
}

impl<W: Write> TarOut<W> {
    pub fn new(out: W) -> TarOut<W> {
        let mut builder = tar::Builder::new(out);
        builder.mode(tar::HeaderMode::Complete);
        TarOut {
            builder,
            now: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        }
    }

    fn header(
        &self,
        kind: tar::EntryType,
        mode: u32,
        owner: (u32, u32),
        mtime: Option<u64>,
    ) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode & 0o7777);
        h.set_uid(owner.0.into());
        h.set_gid(owner.1.into());
        h.set_mtime(mtime.unwrap_or(self.now));
        h.set_size(0);
        h
    }

    pub fn dir(&mut self, path: &[u8], mode: u32, owner: (u32, u32)) -> Result<(), ShipError> {
        let mut h = self.header(tar::EntryType::Directory, mode, owner, None);
        self.builder
            .append_data(&mut h, os(path), std::io::empty())
            .map_err(ShipError::write)
    }

    /// A file entry; `mtime` is seconds and nanoseconds (now when `None`).
    pub fn file(
        &mut self,
        path: &[u8],
        mode: u32,
        owner: (u32, u32),
        mtime: Option<(u64, u32)>,
        size: u64,
        data: impl Read,
    ) -> Result<(), ShipError> {
        let (sec, nsec) = mtime.unwrap_or((self.now, 0));
        self.precise_mtime(sec, nsec)?;
        let mut h = self.header(tar::EntryType::Regular, mode, owner, Some(sec));
        h.set_size(size);
        self.builder
            .append_data(&mut h, os(path), data.take(size))
            .map_err(ShipError::write)
    }

    pub fn symlink(
        &mut self,
        path: &[u8],
        target: &[u8],
        owner: (u32, u32),
    ) -> Result<(), ShipError> {
        self.precise_mtime(self.now, 0)?;
        let mut h = self.header(tar::EntryType::Symlink, 0o777, owner, None);
        self.builder
            .append_link(&mut h, os(path), os(target))
            .map_err(ShipError::write)
    }

    /// A PAX header giving the next entry's mtime to the nanosecond, never on a whole
    /// second. Docker lists a container's changes against its image by comparing
    /// files (its "naive diff", used by overlay2 on most kernels): a file of the same
    /// size whose mtime is in the same second, one side's nanoseconds being 0, counts
    /// as unchanged. A plain tar header (whole seconds) would give every base file
    /// nanoseconds 0, and an edit of the same size made in that second (the base is
    /// often made just before the agent starts) would be lost.
    fn precise_mtime(&mut self, sec: u64, nsec: u32) -> Result<(), ShipError> {
        let value = format!("mtime={sec}.{:09}\n", nsec.clamp(1, 999_999_999));
        // A record is "LEN VALUE", LEN counting its own digits.
        let mut len = value.len() + 2;
        while len != value.len() + 1 + len.to_string().len() {
            len = value.len() + 1 + len.to_string().len();
        }
        let record = format!("{len} {value}");
        let mut h = tar::Header::new_ustar();
        h.set_path("PaxHeader").map_err(ShipError::write)?;
        h.set_entry_type(tar::EntryType::XHeader);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_size(record.len() as u64);
        h.set_cksum();
        self.builder
            .append(&h, record.as_bytes())
            .map_err(ShipError::write)
    }

    pub fn finish(self) -> Result<W, ShipError> {
        self.builder.into_inner().map_err(ShipError::write)
    }
}

fn os(path: &[u8]) -> &Path {
    Path::new(std::ffi::OsStr::from_bytes(path))
}

fn join(prefix: &str, rel: &[u8]) -> Vec<u8> {
    let mut p = prefix.as_bytes().to_vec();
    if !rel.is_empty() {
        p.push(b'/');
        p.extend_from_slice(rel);
    }
    p
}

/// Copies the file `rel` of `tree` into the tar at `to`, hashing what it copied.
fn copy_file<W: Write>(
    out: &mut TarOut<W>,
    tree: &UntrustedTree,
    rel: &[u8],
    to: &[u8],
    owner: (u32, u32),
) -> Result<[u8; 32], ShipError> {
    let (file, size) = tree
        .open_file(rel)
        .map_err(|e| ShipError::Read(e.to_string()))?;
    let st = rustix::fs::fstat(&file).map_err(|e| ShipError::Read(e.to_string()))?;
    let mut hashing = Hashing {
        inner: file,
        hash: Sha256::new(),
    };
    // Set-id bits never travel.
    let mode = st.st_mode & 0o777;
    out.file(
        to,
        mode,
        owner,
        Some((st.st_mtime.max(0) as u64, st.st_mtime_nsec as u32)),
        size,
        &mut hashing,
    )?;
    Ok(hashing.hash.finalize().into())
}

struct Hashing<R> {
    inner: R,
    hash: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

fn dir_mode(tree: &UntrustedTree, rel: &[u8]) -> u32 {
    tree.stat(rel).map(|st| st.st_mode & 0o777).unwrap_or(0o755) | 0o700
}

/// Writes the merged layers under `workspace/`; fills `manifest` with what came from
/// read-only layers.
fn write_merged<W: Write>(
    out: &mut TarOut<W>,
    layers: &[&UntrustedTree],
    merged: &Merged,
    owner: (u32, u32),
    manifest: &mut Manifest,
) -> Result<(), ShipError> {
    for (path, source) in &merged.entries {
        let tree = layers[source.layer()];
        let from_upper = Some(source.layer()) == merged.upper;
        let to = join(WORKSPACE, path);
        match source {
            Source::Gone { .. } => {}
            Source::Dir { .. } => {
                out.dir(&to, dir_mode(tree, path), owner)?;
                if !from_upper {
                    manifest.dirs.insert(Manifest::key(path));
                }
            }
            Source::File { .. } => {
                let hash = copy_file(out, tree, path, &to, owner)?;
                if !from_upper {
                    manifest.files.insert(Manifest::key(path), hex(&hash));
                }
            }
            Source::Symlink { .. } => {
                let target = tree
                    .read_link(path)
                    .map_err(|e| ShipError::Read(e.to_string()))?;
                out.symlink(&to, &target, owner)?;
                if !from_upper {
                    manifest
                        .links
                        .insert(Manifest::key(path), Manifest::key(&target));
                }
            }
        }
    }
    Ok(())
}

/// Writes the whole tree at `from` (if there is one) under `to` (a folder owned by
/// `owner`, made even when `from` is missing): folders, files, symlinks; FIFOs,
/// devices and whiteouts are left out.
pub fn write_tree<W: Write>(
    out: &mut TarOut<W>,
    from: Option<&Path>,
    to: &str,
    owner: (u32, u32),
) -> Result<(), ShipError> {
    let tree = match from {
        Some(p) => UntrustedTree::open(p).map_err(|e| ShipError::Read(e.to_string()))?,
        None => None,
    };
    let root_mode = tree.as_ref().map(|t| dir_mode(t, b"")).unwrap_or(0o755);
    out.dir(to.as_bytes(), root_mode, owner)?;
    let Some(tree) = tree else {
        return Ok(());
    };
    let mut failed = None;
    tree.walk(WalkLimits::default(), |e| {
        if failed.is_some() {
            return Visit::Skip;
        }
        let dest = join(to, &e.path);
        let step = match &e.kind {
            EntryKind::Dir { .. } => out.dir(&dest, dir_mode(&tree, &e.path), owner),
            EntryKind::File { .. } => copy_file(out, &tree, &e.path, &dest, owner).map(|_| ()),
            EntryKind::Symlink => tree
                .read_link(&e.path)
                .map_err(|e| ShipError::Read(e.to_string()))
                .and_then(|t| out.symlink(&dest, &t, owner)),
            EntryKind::Whiteout | EntryKind::Special(_) => Ok(()),
        };
        match step {
            Ok(()) => Visit::Descend,
            Err(e) => {
                failed = Some(e);
                Visit::Skip
            }
        }
    })
    .map_err(|e| ShipError::Read(e.to_string()))?;
    match failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// What [`pack_workspace`] found.
pub struct PackedWorkspace {
    /// Workspace-relative paths of the base to delete once the tar is unpacked.
    pub deletions: Vec<Vec<u8>>,
    pub manifest: Manifest,
}

/// Writes the layers above the base (`lowers` topmost first, without the base
/// itself, and the `upper` folder above them) into `out` under `workspace/`.
pub fn pack_workspace<W: Write>(
    out: &mut TarOut<W>,
    lowers_above_base: &[&Path],
    upper: Option<&Path>,
    base: &Path,
    owner: (u32, u32),
) -> Result<PackedWorkspace, ShipError> {
    let mut trees = Vec::new();
    // Bottom first.
    for dir in lowers_above_base.iter().rev() {
        if let Some(t) = UntrustedTree::open(dir).map_err(|e| ShipError::Read(e.to_string()))? {
            trees.push(t);
        }
    }
    let mut upper_index = None;
    if let Some(dir) = upper {
        if let Some(t) = UntrustedTree::open(dir).map_err(|e| ShipError::Read(e.to_string()))? {
            upper_index = Some(trees.len());
            trees.push(t);
        }
    }
    let layers: Vec<&UntrustedTree> = trees.iter().collect();
    let merged = merge(&layers, upper_index)?;
    let mut manifest = Manifest::default();
    write_merged(out, &layers, &merged, owner, &mut manifest)?;
    let deletions = deletions(&merged, base, &mut manifest);
    Ok(PackedWorkspace {
        deletions,
        manifest,
    })
}

/// The base checkout at `base` as an image layer: `workspace/` and everything in it,
/// owned by `owner`, with the files' own times (the checkout's index records them).
pub fn write_base_layer<W: Write>(out: W, base: &Path, owner: (u32, u32)) -> Result<W, ShipError> {
    let mut tar = TarOut::new(out);
    write_tree(&mut tar, Some(base), WORKSPACE, owner)?;
    tar.finish()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The set of workspace paths `entries` names, for tests.
#[cfg(test)]
fn names(m: &Merged) -> std::collections::BTreeSet<String> {
    m.entries
        .keys()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn tree(dir: &Path) -> UntrustedTree {
        UntrustedTree::open(dir).unwrap().unwrap()
    }

    fn whiteout(path: &Path) {
        std::fs::write(path, b"").unwrap();
        rustix::fs::setxattr(
            path,
            "user.overlay.whiteout",
            b"",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
    }

    #[test]
    fn layers_merge_as_an_overlay_shows_them_and_deletions_spare_what_is_sent() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().join("base");
        for (p, c) in [
            ("keep.txt", "k"),
            ("gone.txt", "g"),
            ("dir/a.txt", "a"),
            ("dir/b.txt", "b"),
            ("replaced/old.txt", "o"),
        ] {
            let f = base.join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, c).unwrap();
        }
        // The start layer deletes gone.txt and dir/b.txt, changes dir/a.txt.
        let layer = tmp.path().join("layer");
        std::fs::create_dir_all(layer.join("dir")).unwrap();
        std::fs::write(layer.join("dir/a.txt"), "A").unwrap();
        whiteout(&layer.join("gone.txt"));
        whiteout(&layer.join("dir/b.txt"));
        // The upper replaces `replaced/` with a folder of its own and adds new.txt.
        let upper = tmp.path().join("upper");
        std::fs::create_dir_all(upper.join("replaced")).unwrap();
        rustix::fs::setxattr(
            upper.join("replaced").as_path(),
            "user.overlay.opaque",
            b"y",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
        std::fs::write(upper.join("replaced/new.txt"), "n").unwrap();

        let mut tar = TarOut::new(Vec::new());
        let packed =
            pack_workspace(&mut tar, &[&layer], Some(&upper), &base, (1000, 1000)).unwrap();
        let deletions: Vec<String> = packed
            .deletions
            .iter()
            .map(|d| String::from_utf8_lossy(d).into_owned())
            .collect();
        assert_eq!(deletions, ["dir/b.txt", "gone.txt", "replaced/old.txt"]);
        // Deletions made by the read-only layer are "sent"; the upper's are its work.
        assert!(packed
            .manifest
            .deleted
            .contains(&Manifest::key(b"gone.txt")));
        assert!(!packed
            .manifest
            .deleted
            .contains(&Manifest::key(b"replaced/old.txt")));
        assert!(packed
            .manifest
            .files
            .contains_key(&Manifest::key(b"dir/a.txt")));
        assert!(!packed
            .manifest
            .files
            .contains_key(&Manifest::key(b"replaced/new.txt")));

        let bytes = tar.finish().unwrap();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut seen = BTreeSet::new();
        for e in archive.entries().unwrap() {
            let e = e.unwrap();
            assert_eq!(e.header().uid().unwrap(), 1000);
            seen.insert(String::from_utf8_lossy(&e.path_bytes()).into_owned());
        }
        let want: BTreeSet<String> = [
            "workspace/dir",
            "workspace/dir/a.txt",
            "workspace/replaced",
            "workspace/replaced/new.txt",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(seen, want);
    }

    #[test]
    fn a_file_in_a_higher_layer_hides_a_folder_below_and_the_reverse() {
        let tmp = tempfile::tempdir().unwrap();
        let low = tmp.path().join("low");
        std::fs::create_dir_all(low.join("x")).unwrap();
        std::fs::write(low.join("x/inner"), "i").unwrap();
        std::fs::write(low.join("y"), "file").unwrap();
        let high = tmp.path().join("high");
        std::fs::create_dir_all(high.join("y")).unwrap();
        std::fs::write(high.join("y/in"), "d").unwrap();
        std::fs::write(high.join("x"), "now a file").unwrap();
        let (l, h) = (tree(&low), tree(&high));
        let merged = merge(&[&l, &h], None).unwrap();
        assert_eq!(
            names(&merged),
            ["x", "y", "y/in"].iter().map(|s| s.to_string()).collect()
        );
        assert_eq!(
            merged.entries[b"y".as_slice()],
            Source::Dir {
                layer: 1,
                hides_base: true
            }
        );
    }

    #[test]
    fn files_and_links_carry_their_mtime_to_the_nanosecond_never_on_a_whole_second() {
        let mut out = TarOut::new(Vec::new());
        out.file(
            b"a",
            0o644,
            (1, 1),
            Some((1_700_000_000, 123)),
            2,
            &b"hi"[..],
        )
        .unwrap();
        out.file(b"b", 0o644, (1, 1), Some((1_700_000_000, 0)), 0, &b""[..])
            .unwrap();
        out.symlink(b"l", b"a", (1, 1)).unwrap();
        let bytes = out.finish().unwrap();
        let mut archive = tar::Archive::new(&bytes[..]);
        let mut seen = vec![];
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = String::from_utf8(entry.path_bytes().into_owned()).unwrap();
            let mtime = entry
                .pax_extensions()
                .unwrap()
                .unwrap()
                .map(|e| e.unwrap())
                .find(|e| e.key().unwrap() == "mtime")
                .map(|e| e.value().unwrap().to_string())
                .unwrap();
            seen.push((name, mtime));
        }
        assert_eq!(seen[0], ("a".into(), "1700000000.000000123".into()));
        assert_eq!(seen[1], ("b".into(), "1700000000.000000001".into()));
        assert_eq!(seen[2].0, "l");
        assert!(!seen[2].1.ends_with(".000000000"), "{:?}", seen[2]);
    }
}
