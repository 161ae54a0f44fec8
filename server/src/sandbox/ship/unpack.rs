//! Writing what a container sent back into a host folder, as hostile input.
//!
//! A [`Writer`] owns a folder it made itself and creates entries only below it: every
//! name is checked (no `..`, no `.`, no NUL, no empty component, bounded depth), every
//! folder on the way is opened relative to its parent with `O_NOFOLLOW`, so a symlink
//! that an earlier entry made is never followed; files are created with `O_EXCL`;
//! only folders, regular files, symlinks (their targets are data, never resolved)
//! and FIFOs (never opened) are made, never devices, set-id bits dropped; whiteouts are made only where the caller says a
//! path was deleted. A [`Budget`] bounds bytes and entries across everything one
//! collection writes.

use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Mode, OFlags};
use sha2::{Digest, Sha256};

use super::ShipError;
use crate::git::layer::Whiteouts;

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// The deepest path written.
const MAX_DEPTH: usize = 256;

/// What one collection may still write, and the files it left out for want of bytes.
#[derive(Debug, Clone, Default)]
pub struct Budget {
    pub bytes: u64,
    pub entries: usize,
    /// Files not written: their content would have passed `bytes`.
    pub skipped: Vec<Vec<u8>>,
}

impl Budget {
    fn entry(&mut self) -> Result<(), ShipError> {
        if self.entries == 0 {
            return Err(ShipError::Refused(
                "the container left more entries than a result may hold".into(),
            ));
        }
        self.entries -= 1;
        Ok(())
    }

    /// Takes `n` bytes for `path`, or records it as skipped when they are not left.
    fn bytes(&mut self, n: u64, path: &[u8]) -> bool {
        if n > self.bytes {
            self.skipped.push(path.to_vec());
            return false;
        }
        self.bytes -= n;
        true
    }
}

/// The components of `rel`, refused when one would leave the folder.
pub fn components(rel: &[u8]) -> Result<Vec<&[u8]>, ShipError> {
    let parts: Vec<&[u8]> = rel
        .split(|&b| b == b'/')
        .filter(|p| !p.is_empty())
        .collect();
    let bad = parts.is_empty()
        || parts.len() > MAX_DEPTH
        || parts
            .iter()
            .any(|p| *p == b".." || *p == b"." || p.contains(&0) || p.len() > 255);
    if bad || rel.starts_with(b"/") {
        return Err(ShipError::Refused(format!(
            "the name {:?} leaves its folder or is not a path",
            String::from_utf8_lossy(rel)
        )));
    }
    Ok(parts)
}

fn errno(path: &[u8]) -> impl FnOnce(rustix::io::Errno) -> ShipError + '_ {
    move |e| ShipError::Write(format!("{}: {e}", String::from_utf8_lossy(path)))
}

/// A folder this process made, written only through checked names.
pub struct Writer {
    root: OwnedFd,
    path: PathBuf,
    owner: Option<(u32, u32)>,
    whiteouts: Whiteouts,
}

impl Writer {
    /// Makes the folder `path` (which must not exist), owned by `owner` when given.
    pub fn create(path: &Path, owner: Option<(u32, u32)>) -> Result<Writer, ShipError> {
        let fail = |e: std::io::Error| ShipError::Write(format!("{}: {e}", path.display()));
        std::fs::create_dir(path).map_err(fail)?;
        let root = rustix::fs::openat(rustix::fs::CWD, path, DIR_FLAGS, Mode::empty())
            .map_err(|e| fail(e.into()))?;
        let writer = Writer {
            root,
            path: path.to_path_buf(),
            owner,
            whiteouts: Whiteouts::for_this_process(),
        };
        writer.chown(&writer.root, b"")?;
        Ok(writer)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn chown(&self, fd: &OwnedFd, rel: &[u8]) -> Result<(), ShipError> {
        if let Some((uid, gid)) = self.owner {
            if rustix::process::geteuid().as_raw() != uid {
                rustix::fs::fchown(
                    fd,
                    Some(rustix::process::Uid::from_raw(uid)),
                    Some(rustix::process::Gid::from_raw(gid)),
                )
                .map_err(errno(rel))?;
            }
        }
        Ok(())
    }

    /// The folder holding `rel` (made, with the folders above it, when missing) and
    /// the last component's name.
    fn parent(&self, rel: &[u8]) -> Result<(OwnedFd, CString), ShipError> {
        let parts = components(rel)?;
        let (last, dirs) = parts.split_last().expect("components are never empty");
        let mut dir = self
            .root
            .try_clone()
            .map_err(|e| ShipError::Write(format!("{}: {e}", self.path.display())))?;
        for part in dirs {
            let name = CString::new(*part).expect("NUL refused above");
            dir = match rustix::fs::openat(&dir, name.as_c_str(), DIR_FLAGS, Mode::empty()) {
                Ok(fd) => fd,
                Err(rustix::io::Errno::NOENT) => {
                    rustix::fs::mkdirat(&dir, name.as_c_str(), Mode::from_raw_mode(0o755))
                        .map_err(errno(rel))?;
                    let fd = rustix::fs::openat(&dir, name.as_c_str(), DIR_FLAGS, Mode::empty())
                        .map_err(errno(rel))?;
                    self.chown(&fd, rel)?;
                    fd
                }
                Err(rustix::io::Errno::NOTDIR) | Err(rustix::io::Errno::LOOP) => {
                    return Err(ShipError::Refused(format!(
                        "{} lies below a symlink or a file",
                        String::from_utf8_lossy(rel)
                    )))
                }
                Err(e) => return Err(errno(rel)(e)),
            };
        }
        Ok((dir, CString::new(*last).expect("NUL refused above")))
    }

    /// Removes what is at `name` in `dir` unless it is a folder (entries may repeat a
    /// name: the last one wins, as when unpacking).
    fn clear(dir: &OwnedFd, name: &std::ffi::CStr) {
        if let Ok(st) = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::Directory {
                let _ = rustix::fs::unlinkat(dir, name, AtFlags::empty());
            }
        }
    }

    pub fn dir(&self, rel: &[u8], mode: u32, budget: &mut Budget) -> Result<(), ShipError> {
        budget.entry()?;
        let (dir, name) = self.parent(rel)?;
        Self::clear(&dir, &name);
        match rustix::fs::mkdirat(&dir, name.as_c_str(), Mode::from_raw_mode(0o700)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(errno(rel)(e)),
        }
        let fd = rustix::fs::openat(&dir, name.as_c_str(), DIR_FLAGS, Mode::empty())
            .map_err(errno(rel))?;
        self.chown(&fd, rel)?;
        // Always enterable by the host; never set-id.
        rustix::fs::fchmod(&fd, Mode::from_raw_mode((mode & 0o777) | 0o700)).map_err(errno(rel))
    }

    /// Writes `size` bytes of `data` as the file `rel`; returns their SHA-256, or
    /// `None` when `size` would pass what the budget has left (the file is then
    /// recorded as skipped, and not a byte of it read).
    pub fn file(
        &self,
        rel: &[u8],
        mode: u32,
        size: u64,
        data: &mut impl Read,
        budget: &mut Budget,
    ) -> Result<Option<[u8; 32]>, ShipError> {
        components(rel)?;
        budget.entry()?;
        if !budget.bytes(size, rel) {
            return Ok(None);
        }
        let (dir, name) = self.parent(rel)?;
        Self::clear(&dir, &name);
        let fd = rustix::fs::openat(
            &dir,
            name.as_c_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(errno(rel))?;
        self.chown(&fd, rel)?;
        let mut file = std::fs::File::from(fd);
        let mut hash = Sha256::new();
        let mut left = size;
        let mut buf = vec![0u8; 64 * 1024];
        while left > 0 {
            let want = buf.len().min(left as usize);
            let n = data
                .read(&mut buf[..want])
                .map_err(|e| ShipError::Read(format!("{}: {e}", String::from_utf8_lossy(rel))))?;
            if n == 0 {
                return Err(ShipError::Read(format!(
                    "{}: the archive ended inside it",
                    String::from_utf8_lossy(rel)
                )));
            }
            hash.update(&buf[..n]);
            file.write_all(&buf[..n])
                .map_err(|e| ShipError::Write(format!("{}: {e}", String::from_utf8_lossy(rel))))?;
            left -= n as u64;
        }
        rustix::fs::fchmod(&file, Mode::from_raw_mode(mode & 0o777)).map_err(errno(rel))?;
        Ok(Some(hash.finalize().into()))
    }

    /// Copies the file `from` (written by this writer) to `to`: a hard link in the
    /// archive.
    pub fn copy(&self, from: &[u8], to: &[u8], budget: &mut Budget) -> Result<(), ShipError> {
        let (dir, name) = self.parent(from)?;
        let fd = rustix::fs::openat(
            &dir,
            name.as_c_str(),
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno(from))?;
        let st = rustix::fs::fstat(&fd).map_err(errno(from))?;
        if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
            return Err(ShipError::Refused(format!(
                "{} links to something that is not a file",
                String::from_utf8_lossy(to)
            )));
        }
        let mut file = std::fs::File::from(fd);
        self.file(to, st.st_mode, st.st_size as u64, &mut file, budget)?;
        Ok(())
    }

    pub fn symlink(&self, rel: &[u8], target: &[u8], budget: &mut Budget) -> Result<(), ShipError> {
        budget.entry()?;
        if target.is_empty() || target.len() > 4096 || target.contains(&0) {
            return Err(ShipError::Refused(format!(
                "the symlink {} has no usable target",
                String::from_utf8_lossy(rel)
            )));
        }
        let (dir, name) = self.parent(rel)?;
        Self::clear(&dir, &name);
        let target = CString::new(target).expect("NUL refused above");
        rustix::fs::symlinkat(target.as_c_str(), &dir, name.as_c_str()).map_err(errno(rel))?;
        if let Some((uid, gid)) = self.owner {
            if rustix::process::geteuid().as_raw() != uid {
                rustix::fs::chownat(
                    &dir,
                    name.as_c_str(),
                    Some(rustix::process::Uid::from_raw(uid)),
                    Some(rustix::process::Gid::from_raw(gid)),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(errno(rel))?;
            }
        }
        Ok(())
    }

    /// Makes the FIFO `rel`, as the agent left one: never opened here, it is there
    /// for the importer to list as not imported, as it lists an overlay's.
    pub fn fifo(&self, rel: &[u8], budget: &mut Budget) -> Result<(), ShipError> {
        budget.entry()?;
        let (dir, name) = self.parent(rel)?;
        Self::clear(&dir, &name);
        rustix::fs::mknodat(
            &dir,
            name.as_c_str(),
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .map_err(errno(rel))
    }

    /// Marks `rel` deleted, as overlayfs marks it in an upper folder.
    pub fn whiteout(&self, rel: &[u8], budget: &mut Budget) -> Result<(), ShipError> {
        budget.entry()?;
        let (dir, name) = self.parent(rel)?;
        Self::clear(&dir, &name);
        match self.whiteouts {
            Whiteouts::Device => rustix::fs::mknodat(
                &dir,
                name.as_c_str(),
                rustix::fs::FileType::CharacterDevice,
                Mode::from_raw_mode(0o600),
                0,
            )
            .map_err(errno(rel)),
            Whiteouts::Xattr => {
                let fd = rustix::fs::openat(
                    &dir,
                    name.as_c_str(),
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(errno(rel))?;
                rustix::fs::fsetxattr(
                    &fd,
                    "user.overlay.whiteout",
                    b"",
                    rustix::fs::XattrFlags::empty(),
                )
                .map_err(errno(rel))
            }
        }
    }

    /// Removes the file or symlink `rel` again (it turned out to be what was sent).
    pub fn remove(&self, rel: &[u8]) -> Result<(), ShipError> {
        let (dir, name) = self.parent(rel)?;
        match rustix::fs::unlinkat(&dir, name.as_c_str(), AtFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
            Err(e) => Err(errno(rel)(e)),
        }
    }
}

/// Replaces the folder `target` by `new` (a sibling made by a [`Writer`]): the old
/// one is renamed aside and removed, so a reader never sees half of either.
pub fn replace_dir(new: &Path, target: &Path) -> Result<(), ShipError> {
    let fail = |e: std::io::Error| ShipError::Write(format!("{}: {e}", target.display()));
    let old = target.with_file_name(format!(
        ".{}.old-{}",
        target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let _ = crate::untrusted::remove_tree(&old);
    let had = match std::fs::rename(target, &old) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(fail(e)),
    };
    if let Err(e) = std::fs::rename(new, target) {
        if had {
            let _ = std::fs::rename(&old, target);
        }
        return Err(fail(e));
    }
    if had {
        crate::untrusted::remove_tree(&old).map_err(fail)?;
    }
    Ok(())
}

/// A sibling of `target` for a [`Writer`] to fill before [`replace_dir`], cleared of
/// what an earlier attempt left.
pub fn staging_for(target: &Path) -> PathBuf {
    let staging = target.with_file_name(format!(
        ".{}.collecting-{}",
        target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let _ = crate::untrusted::remove_tree(&staging);
    staging
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget() -> Budget {
        Budget {
            bytes: 1 << 20,
            entries: 100,
            ..Default::default()
        }
    }

    #[test]
    fn names_that_leave_the_folder_are_refused() {
        for bad in ["../x", "a/../../x", "/etc/passwd", "a/./b", "", "a\0b"] {
            assert!(components(bad.as_bytes()).is_err(), "{bad:?}");
        }
        assert_eq!(components(b"a//b/").unwrap(), [b"a".as_slice(), b"b"]);
    }

    #[test]
    fn a_symlink_written_earlier_is_never_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let w = Writer::create(&tmp.path().join("out"), None).unwrap();
        let mut b = budget();
        w.symlink(b"link", outside.to_str().unwrap().as_bytes(), &mut b)
            .unwrap();
        let err = w
            .file(b"link/evil", 0o644, 1, &mut &b"x"[..], &mut b)
            .unwrap_err();
        assert!(err.to_string().contains("below a symlink"), "{err}");
        assert!(!outside.join("evil").exists());
        // A file replaced by a folder, a file's set-id bits dropped.
        w.file(b"f", 0o4755, 2, &mut &b"hi"[..], &mut b).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(tmp.path().join("out/f"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o755);
    }

    #[test]
    fn budgets_bound_bytes_and_entries() {
        let tmp = tempfile::tempdir().unwrap();
        let w = Writer::create(&tmp.path().join("out"), None).unwrap();
        let mut b = Budget {
            bytes: 4,
            entries: 2,
            ..Default::default()
        };
        // Too big: skipped and named, nothing written, the rest still fits.
        assert_eq!(
            w.file(b"big", 0o644, 5, &mut &b"12345"[..], &mut b)
                .unwrap(),
            None
        );
        assert!(!tmp.path().join("out/big").exists());
        assert_eq!(b.skipped, [b"big".to_vec()]);
        assert!(w
            .file(b"a", 0o644, 2, &mut &b"12"[..], &mut b)
            .unwrap()
            .is_some());
        // Too many entries: refused.
        assert!(w.dir(b"d", 0o755, &mut b).is_err());
    }
}
