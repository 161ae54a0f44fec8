//! The agent's index as git's *split index*: a start layer's `.git/index` holds only
//! the entries that differ from the base's index, and links to the base's index for
//! the rest (gitformat-index(5), "Split index"). The base keeps its index a second
//! time under the name git looks for, `.git/sharedindex.<its checksum>` (a hard link,
//! no copy). A start layer then costs its changed entries, not a rewrite of the whole
//! index — 5 MB and ~25 ms for a 50 000-file repository, on every task.
//!
//! libgit2 does not write split indexes, so this module writes the small file itself;
//! the agent's own git reads it (git ≥ 2.1) and keeps it split when it writes the
//! index. Handoff never reads the agent's index. Only base indexes of version 2 or 3
//! (what libgit2 writes) are linked to; for anything else the caller writes a whole
//! index as before.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use git2::Oid;
use sha1::{Digest, Sha1};

use super::GitError;

/// An entry of the agent's index: its path, blob, mode and the stat data of the file
/// the layer holds.
#[derive(Debug, Clone)]
pub struct Entry {
    pub path: Vec<u8>,
    pub id: Oid,
    pub mode: u32,
    pub stat: Stat,
}

/// The stat fields git's index records, as it truncates them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stat {
    pub ctime: (u32, u32),
    pub mtime: (u32, u32),
    pub dev: u32,
    pub ino: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u32,
}

impl Stat {
    pub fn of(meta: &std::fs::Metadata) -> Stat {
        use std::os::unix::fs::MetadataExt;
        Stat {
            ctime: (meta.ctime() as u32, meta.ctime_nsec() as u32),
            mtime: (meta.mtime() as u32, meta.mtime_nsec() as u32),
            dev: meta.dev() as u32,
            ino: meta.ino() as u32,
            uid: meta.uid(),
            gid: meta.gid(),
            size: meta.len() as u32,
        }
    }
}

/// What a layer changes in the base's index.
#[derive(Debug, Default)]
pub struct Changes {
    /// Paths removed; with `true`, everything under the folder of that name.
    pub removed: Vec<(Vec<u8>, bool)>,
    /// Entries put (replacing the base's entry of the same path, if any).
    pub put: Vec<Entry>,
}

/// The name git reads a shared index under, for an index file with `checksum`.
fn shared_name(checksum: &[u8]) -> String {
    let hex: String = checksum.iter().map(|b| format!("{b:02x}")).collect();
    format!("sharedindex.{hex}")
}

/// Makes the base's index (`git_dir/index`) readable as a shared index too, owned by
/// `owner` (the agent's git touches it each time it writes its index, and warns when
/// it may not). Called once, when the base is made.
pub fn share_base_index(git_dir: &Path, owner: (u32, u32)) -> Result<(), GitError> {
    let index = git_dir.join("index");
    let bytes = std::fs::read(&index).map_err(|source| GitError::Read {
        path: index.clone(),
        source,
    })?;
    if bytes.len() < 32 {
        return Ok(());
    }
    let shared = git_dir.join(shared_name(&bytes[bytes.len() - 20..]));
    let failed = |source| GitError::Write {
        path: shared.clone(),
        source,
    };
    match std::fs::hard_link(&index, &shared) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(failed(e)),
    }
    if rustix::process::geteuid().as_raw() != owner.0 {
        std::os::unix::fs::lchown(&shared, Some(owner.0), Some(owner.1)).map_err(failed)?;
    }
    Ok(())
}

/// The shared index of a base, when it has one this module can link to: the base
/// index's bytes and its path.
pub fn base_shared_index(base_git_dir: &Path) -> Option<(Vec<u8>, PathBuf)> {
    let bytes = std::fs::read(base_git_dir.join("index")).ok()?;
    if bytes.len() < 32 || &bytes[..4] != b"DIRC" {
        return None;
    }
    let version = u32::from_be_bytes(bytes[4..8].try_into().ok()?);
    if !(2..=3).contains(&version) {
        return None;
    }
    let shared = base_git_dir.join(shared_name(&bytes[bytes.len() - 20..]));
    shared.is_file().then_some((bytes, shared))
}

/// The paths of an index file's entries, in order; `None` for what this module does
/// not read (another version, a damaged file).
fn entry_paths(bytes: &[u8]) -> Option<Vec<&[u8]>> {
    let version = u32::from_be_bytes(bytes.get(4..8)?.try_into().ok()?);
    let count = u32::from_be_bytes(bytes.get(8..12)?.try_into().ok()?) as usize;
    if !(2..=3).contains(&version) {
        return None;
    }
    let mut paths = Vec::with_capacity(count);
    let mut at = 12usize;
    for _ in 0..count {
        let flags = u16::from_be_bytes(bytes.get(at + 60..at + 62)?.try_into().ok()?);
        // Version 3 entries with extended flags carry two more bytes before the name.
        let fixed = if flags & 0x4000 != 0 { 64 } else { 62 };
        let name_at = at + fixed;
        let len = match (flags & 0xfff) as usize {
            0xfff => bytes.get(name_at..)?.iter().position(|&b| b == 0)?,
            n => n,
        };
        paths.push(bytes.get(name_at..name_at + len)?);
        // One to eight NULs pad an entry to a multiple of eight bytes.
        at += (fixed + len + 8) & !7;
    }
    Some(paths)
}

/// Writes to `to` a split index: the entries of `changes` over the base index
/// `base` (its bytes), linked to it by its checksum. `None` when `base` cannot be
/// read as an index of version 2 or 3.
pub fn write(to: &Path, base: &[u8], changes: Changes) -> Result<Option<()>, GitError> {
    let Some(paths) = entry_paths(base) else {
        return Ok(None);
    };
    let checksum = &base[base.len() - 20..];
    let mut put: BTreeMap<Vec<u8>, Entry> = BTreeMap::new();
    for e in changes.put {
        put.insert(e.path.clone(), e);
    }
    let removed_files: HashSet<&[u8]> = changes
        .removed
        .iter()
        .filter(|(_, dir)| !dir)
        .map(|(p, _)| p.as_slice())
        .collect();
    let removed_dirs: HashSet<&[u8]> = changes
        .removed
        .iter()
        .filter(|(_, dir)| *dir)
        .map(|(p, _)| p.as_slice())
        .collect();
    let under_removed_dir = |path: &[u8]| {
        !removed_dirs.is_empty()
            && path
                .iter()
                .enumerate()
                .any(|(i, &b)| b == b'/' && removed_dirs.contains(&path[..i]))
    };
    let mut deleted: Vec<u32> = vec![];
    let mut replaced: Vec<(u32, Vec<u8>)> = vec![];
    for (pos, path) in paths.iter().enumerate() {
        let pos = pos as u32;
        if put.contains_key(*path) {
            replaced.push((pos, path.to_vec()));
        } else if removed_files.contains(path) || under_removed_dir(path) {
            deleted.push(pos);
        }
    }
    let replaced_paths: HashSet<&[u8]> = replaced.iter().map(|(_, p)| p.as_slice()).collect();
    let mut out: Vec<u8> = Vec::with_capacity(64 * (put.len() + 1) + 128);
    out.extend_from_slice(b"DIRC");
    out.extend_from_slice(&2u32.to_be_bytes());
    out.extend_from_slice(&(put.len() as u32).to_be_bytes());
    // The replacing entries first, in the order of the entries they replace, with
    // empty names (git takes the base's); then the added ones, sorted by name.
    for (_, path) in &replaced {
        entry(&mut out, &put[path.as_slice()], false);
    }
    for (path, e) in &put {
        if !replaced_paths.contains(path.as_slice()) {
            entry(&mut out, e, true);
        }
    }
    let mut link = checksum.to_vec();
    ewah(&mut link, &deleted);
    ewah(
        &mut link,
        &replaced.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
    );
    out.extend_from_slice(b"link");
    out.extend_from_slice(&(link.len() as u32).to_be_bytes());
    out.extend_from_slice(&link);
    let sum = Sha1::digest(&out);
    out.extend_from_slice(&sum);
    std::fs::write(to, &out).map_err(|source| GitError::Write {
        path: to.to_path_buf(),
        source,
    })?;
    Ok(Some(()))
}

/// One version-2 entry, with its name or (a replacing entry) without.
fn entry(out: &mut Vec<u8>, e: &Entry, named: bool) {
    let start = out.len();
    let s = &e.stat;
    for v in [
        s.ctime.0, s.ctime.1, s.mtime.0, s.mtime.1, s.dev, s.ino, e.mode, s.uid, s.gid, s.size,
    ] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(e.id.as_bytes());
    let name: &[u8] = if named { &e.path } else { b"" };
    out.extend_from_slice(&(name.len().min(0xfff) as u16).to_be_bytes());
    out.extend_from_slice(name);
    // One to eight NULs, to a multiple of eight bytes.
    let len = ((62 + name.len() + 8) & !7) + start;
    out.resize(len, 0);
}

/// An EWAH bitmap (git's `ewah_serialize`) with the bits at the sorted `positions`.
fn ewah(out: &mut Vec<u8>, positions: &[u32]) {
    // Literal words by index, in order.
    let mut literals: Vec<(u64, u64)> = vec![];
    for &p in positions {
        let (word, bit) = (p as u64 / 64, p % 64);
        match literals.last_mut() {
            Some((w, bits)) if *w == word => *bits |= 1 << bit,
            _ => literals.push((word, 1 << bit)),
        }
    }
    // Marker words: bit 0 the running bit (0 here), bits 1-32 how many all-zero words,
    // bits 33-63 how many literal words follow.
    let mut buffer: Vec<u64> = vec![];
    let mut marker = 0usize;
    let mut next_word = 0u64;
    for (word, bits) in literals {
        let gap = word - next_word;
        if buffer.is_empty() || gap > 0 {
            marker = buffer.len();
            buffer.push(gap << 1);
        }
        buffer.push(bits);
        buffer[marker] += 1 << 33;
        next_word = word + 1;
    }
    if buffer.is_empty() {
        buffer.push(0);
    }
    let bit_size = positions.last().map_or(0, |&p| p + 1);
    out.extend_from_slice(&bit_size.to_be_bytes());
    out.extend_from_slice(&(buffer.len() as u32).to_be_bytes());
    for w in &buffer {
        out.extend_from_slice(&w.to_be_bytes());
    }
    out.extend_from_slice(&(marker as u32).to_be_bytes());
}

/// For tests: the entries an index file lists, by path, with their positions.
#[cfg(test)]
pub(crate) fn positions(bytes: &[u8]) -> std::collections::HashMap<Vec<u8>, usize> {
    entry_paths(bytes)
        .unwrap()
        .into_iter()
        .enumerate()
        .map(|(i, p)| (p.to_vec(), i))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::test_support::{git_cli as git, repo_with};

    #[test]
    fn git_reads_a_split_index_with_changes_across_many_bitmap_words() {
        // 300 files: positions in five 64-bit words, and runs of untouched words.
        let names: Vec<String> = (0..300).map(|i| format!("d{}/f{i:03}", i / 50)).collect();
        let files: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "x\n")).collect();
        let (dir, repo) = repo_with(&files);
        let w = dir.path();
        let git_dir = repo.path().to_path_buf();
        share_base_index(&git_dir, crate::git::test_support::me()).unwrap();
        let (base, _) = base_shared_index(&git_dir).expect("a shared index");
        let order = positions(&base);
        assert_eq!(order.len(), 300);

        // Replace some, delete some (one by one and a whole folder), add some.
        let mut changes = Changes::default();
        let put = |path: &str, text: &str, changes: &mut Changes| {
            let full = w.join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(&full, text).unwrap();
            changes.put.push(Entry {
                path: path.as_bytes().to_vec(),
                id: repo.blob(text.as_bytes()).unwrap(),
                mode: 0o100644,
                stat: Stat::of(&std::fs::symlink_metadata(&full).unwrap()),
            });
        };
        for n in [0, 1, 63, 64, 130, 299] {
            put(&names[n], "replaced\n", &mut changes);
        }
        for n in [2, 65, 200, 298] {
            std::fs::remove_file(w.join(&names[n])).unwrap();
            changes.removed.push((names[n].as_bytes().to_vec(), false));
        }
        std::fs::remove_dir_all(w.join("d3")).unwrap();
        changes.removed.push((b"d3".to_vec(), true));
        put("aaa-first", "new\n", &mut changes);
        put("d1/zz-new", "new\n", &mut changes);
        put("d3/again", "back\n", &mut changes);
        put("zzz-last", "new\n", &mut changes);

        let index = git_dir.join("index");
        std::fs::remove_file(&index).unwrap();
        write(&index, &base, changes).unwrap().expect("written");
        assert!(std::fs::metadata(&index).unwrap().len() < 2048);

        assert_eq!(
            git(w, &["ls-files", "--others", "--exclude-standard"]),
            "",
            "every file is in the index"
        );
        let listed: Vec<String> = git(w, &["ls-files"]).lines().map(String::from).collect();
        let mut want: Vec<String> = names
            .iter()
            .enumerate()
            .filter(|(i, n)| ![2, 65, 200, 298].contains(i) && !n.starts_with("d3/"))
            .map(|(_, n)| n.clone())
            .chain(["aaa-first", "d1/zz-new", "d3/again", "zzz-last"].map(String::from))
            .collect();
        want.sort();
        assert_eq!(listed, want);
        // What git sees as staged is exactly the change: the index is the whole tree.
        let staged = git(w, &["diff", "--cached", "--name-status"]);
        assert!(
            staged.contains("M\td0/f000") && staged.contains("A\taaa-first"),
            "{staged}"
        );
        assert!(
            staged.contains("D\td3/f150") && staged.contains("D\td5/f298"),
            "{staged}"
        );
        assert_eq!(
            git(w, &["diff", "--name-only"]),
            "",
            "the files match the index"
        );
        // And it can write it again.
        git(w, &["add", "-A"]);
        git(
            w,
            &[
                "-c",
                "user.name=a",
                "-c",
                "user.email=a@b",
                "commit",
                "-qm",
                "c",
            ],
        );
        assert_eq!(git(w, &["status", "--porcelain"]), "");
    }

    #[test]
    fn an_index_of_another_version_is_not_linked_to() {
        let (_dir, repo) = repo_with(&[("a", "a\n")]);
        let git_dir = repo.path().to_path_buf();
        let mut bytes = std::fs::read(git_dir.join("index")).unwrap();
        bytes[7] = 4;
        assert!(write(&git_dir.join("other"), &bytes, Changes::default())
            .unwrap()
            .is_none());
    }
}
