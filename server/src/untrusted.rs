//! Reading folders the sandbox wrote, as hostile input.
//!
//! Everything an agent can write — its workspace changes (the overlay's upper folder),
//! its HOME, the runner's reports — is read on the host only through this module:
//! every path component is opened relative to its parent with `O_NOFOLLOW`, so no
//! symlink the agent made is ever followed; files are opened with `O_NONBLOCK` and
//! checked to be regular before a byte is read, so a FIFO or a device never blocks or
//! reaches a device; every read is bounded. The tree is only read after the agent's
//! container has ended, so nothing changes it underneath.
//!
//! This module knows files and folders; it knows nothing of git, tasks or overlays
//! beyond the two marks overlayfs leaves in an upper folder (whiteouts and opaque
//! folders), which it reports as such.

use std::ffi::{CStr, OsStr};
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

/// What a walk met at one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    File {
        size: u64,
        executable: bool,
    },
    Symlink,
    /// `opaque`: overlayfs marked it as replacing the folder below it wholesale.
    Dir {
        opaque: bool,
    },
    /// An overlayfs whiteout: the path was deleted.
    Whiteout,
    /// A FIFO, socket or device: never opened, reported by its kind.
    Special(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative to the tree's root, `/`-separated, as bytes (names need not be UTF-8).
    pub path: Vec<u8>,
    pub kind: EntryKind,
}

/// What the visitor wants after seeing a folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visit {
    Descend,
    Skip,
}

#[derive(Debug, thiserror::Error)]
pub enum UntrustedError {
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("{path} is {what}, not a regular file; it was not read")]
    NotAFile { path: String, what: &'static str },
    #[error("{path} is larger than {limit} bytes; it was not read")]
    TooLarge { path: String, limit: u64 },
    #[error("more than {limit} entries under {root}; the rest was not read")]
    TooManyEntries { root: String, limit: usize },
    #[error("{path} is nested more than {limit} folders deep; it was not read")]
    TooDeep { path: String, limit: usize },
}

/// Bounds of one walk.
#[derive(Debug, Clone, Copy)]
pub struct WalkLimits {
    pub max_entries: usize,
    pub max_depth: usize,
}

impl Default for WalkLimits {
    fn default() -> Self {
        WalkLimits {
            max_entries: 1_000_000,
            max_depth: 256,
        }
    }
}

/// A folder tree written by the sandbox, held open by a descriptor of its root.
pub struct UntrustedTree {
    root: OwnedFd,
    path: PathBuf,
}

fn display(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

fn io_err(path: &[u8]) -> impl FnOnce(rustix::io::Errno) -> UntrustedError + '_ {
    move |e| UntrustedError::Io {
        path: display(path),
        source: e.into(),
    }
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);
const FILE_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::NOFOLLOW)
    .union(OFlags::NONBLOCK)
    .union(OFlags::NOCTTY)
    .union(OFlags::CLOEXEC);

fn kind_name(t: FileType) -> &'static str {
    match t {
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::BlockDevice => "a block device",
        FileType::CharacterDevice => "a character device",
        FileType::Symlink => "a symlink",
        FileType::Directory => "a folder",
        _ => "not a regular file",
    }
}

impl UntrustedTree {
    /// Opens the tree at `path`; `Ok(None)` when there is nothing there. The root
    /// itself must be a real folder (a symlink there is refused).
    pub fn open(path: &Path) -> Result<Option<UntrustedTree>, UntrustedError> {
        let bytes = path.as_os_str().as_bytes();
        match rustix::fs::openat(rustix::fs::CWD, path, DIR_FLAGS, Mode::empty()) {
            Ok(root) => Ok(Some(UntrustedTree {
                root,
                path: path.to_path_buf(),
            })),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(io_err(bytes)(e)),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Visits every entry below the root, depth-first, names sorted; a folder is
    /// visited before what it holds, and only entered when the visitor says so.
    pub fn walk(
        &self,
        limits: WalkLimits,
        mut visit: impl FnMut(&Entry) -> Visit,
    ) -> Result<usize, UntrustedError> {
        let mut seen = 0usize;
        let root = self.root.try_clone().map_err(|e| UntrustedError::Io {
            path: self.path.display().to_string(),
            source: e,
        })?;
        self.walk_dir(root, Vec::new(), 0, limits, &mut seen, &mut visit)?;
        Ok(seen)
    }

    fn walk_dir(
        &self,
        dir: OwnedFd,
        prefix: Vec<u8>,
        depth: usize,
        limits: WalkLimits,
        seen: &mut usize,
        visit: &mut impl FnMut(&Entry) -> Visit,
    ) -> Result<(), UntrustedError> {
        if depth > limits.max_depth {
            return Err(UntrustedError::TooDeep {
                path: display(&prefix),
                limit: limits.max_depth,
            });
        }
        let names = list_names(&dir).map_err(io_err(&prefix))?;
        for name in names {
            *seen += 1;
            if *seen > limits.max_entries {
                return Err(UntrustedError::TooManyEntries {
                    root: self.path.display().to_string(),
                    limit: limits.max_entries,
                });
            }
            let mut path = prefix.clone();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(name.to_bytes());
            let st = rustix::fs::statat(&dir, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW)
                .map_err(io_err(&path))?;
            let kind = kind_at(&dir, name.as_c_str(), &st);
            if let EntryKind::Dir { .. } = kind {
                let sub = open_dir_at(&dir, name.as_c_str()).map_err(io_err(&path))?;
                let entry = Entry {
                    path: path.clone(),
                    kind: EntryKind::Dir {
                        opaque: is_opaque(&sub),
                    },
                };
                if visit(&entry) == Visit::Descend {
                    self.walk_dir(sub, path, depth + 1, limits, seen, visit)?;
                }
            } else {
                visit(&Entry { path, kind });
            }
        }
        Ok(())
    }

    /// Opens the regular file at `rel` for reading, never following a symlink in any
    /// component and never opening anything but a regular file.
    pub fn open_file(&self, rel: &[u8]) -> Result<(std::fs::File, u64), UntrustedError> {
        let (dir, name) = self.parent_of(rel)?;
        let fd = match rustix::fs::openat(&dir, name.as_c_str(), FILE_FLAGS, Mode::empty()) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::ACCESS) => {
                // A file the agent made unreadable: it is ours to read back when we own
                // it (the agent runs as the user); root never gets here.
                make_readable(&dir, name.as_c_str()).map_err(io_err(rel))?;
                rustix::fs::openat(&dir, name.as_c_str(), FILE_FLAGS, Mode::empty())
                    .map_err(io_err(rel))?
            }
            Err(rustix::io::Errno::LOOP) => {
                return Err(UntrustedError::NotAFile {
                    path: display(rel),
                    what: "a symlink",
                })
            }
            Err(e) => return Err(io_err(rel)(e)),
        };
        let st = rustix::fs::fstat(&fd).map_err(io_err(rel))?;
        let t = FileType::from_raw_mode(st.st_mode);
        if t != FileType::RegularFile {
            return Err(UntrustedError::NotAFile {
                path: display(rel),
                what: kind_name(t),
            });
        }
        // Reads block normally from here on (O_NONBLOCK means nothing to a regular file).
        Ok((std::fs::File::from(fd), st.st_size as u64))
    }

    /// The whole content of the regular file at `rel`, refused above `limit` bytes.
    pub fn read_file(&self, rel: &[u8], limit: u64) -> Result<Vec<u8>, UntrustedError> {
        let (file, size) = self.open_file(rel)?;
        if size > limit {
            return Err(UntrustedError::TooLarge {
                path: display(rel),
                limit,
            });
        }
        let mut bytes = Vec::with_capacity(size as usize);
        // The size may have grown since fstat: read at most one byte past the limit.
        file.take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| UntrustedError::Io {
                path: display(rel),
                source,
            })?;
        if bytes.len() as u64 > limit {
            return Err(UntrustedError::TooLarge {
                path: display(rel),
                limit,
            });
        }
        Ok(bytes)
    }

    /// Like [`UntrustedTree::read_file`], but `Ok(None)` when there is nothing at `rel`.
    pub fn read_file_if_any(
        &self,
        rel: &[u8],
        limit: u64,
    ) -> Result<Option<Vec<u8>>, UntrustedError> {
        match self.read_file(rel, limit) {
            Ok(b) => Ok(Some(b)),
            Err(UntrustedError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// What is at `rel` (not following a symlink there), or `None` when nothing is.
    pub fn kind_of(&self, rel: &[u8]) -> Option<EntryKind> {
        let (dir, name) = self.parent_of(rel).ok()?;
        let st = rustix::fs::statat(&dir, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW).ok()?;
        Some(kind_at(&dir, name.as_c_str(), &st))
    }

    /// The status of what is at `rel`, not following a symlink there (its mode, owner
    /// and times, for copying it elsewhere as it is).
    pub fn stat(&self, rel: &[u8]) -> Result<rustix::fs::Stat, UntrustedError> {
        if rel.is_empty() {
            return rustix::fs::fstat(&self.root).map_err(io_err(rel));
        }
        let (dir, name) = self.parent_of(rel)?;
        rustix::fs::statat(&dir, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW).map_err(io_err(rel))
    }

    /// The target of the symlink at `rel`, as bytes (never resolved), refused above
    /// 4096 bytes.
    pub fn read_link(&self, rel: &[u8]) -> Result<Vec<u8>, UntrustedError> {
        let (dir, name) = self.parent_of(rel)?;
        let target =
            rustix::fs::readlinkat(&dir, name.as_c_str(), Vec::new()).map_err(io_err(rel))?;
        let bytes = target.into_bytes();
        if bytes.len() > 4096 {
            return Err(UntrustedError::TooLarge {
                path: display(rel),
                limit: 4096,
            });
        }
        Ok(bytes)
    }

    /// Replaces the regular file at `rel` with what `fill` writes, through a new file
    /// in the same folder renamed over it (so a reader never sees half of it); the
    /// file keeps its mode and owner. Never follows a symlink.
    pub fn replace_file(
        &self,
        rel: &[u8],
        fill: impl FnOnce(&mut std::fs::File) -> io::Result<()>,
    ) -> Result<(), UntrustedError> {
        let (original, _) = self.open_file(rel)?;
        let st = rustix::fs::fstat(&original).map_err(io_err(rel))?;
        drop(original);
        let (dir, name) = self.parent_of(rel)?;
        let mut tmp_name = name.as_bytes().to_vec();
        tmp_name.extend_from_slice(format!(".handoff-{}", std::process::id()).as_bytes());
        let tmp_name = std::ffi::CString::new(tmp_name).expect("no NUL in a file name");
        let _ = rustix::fs::unlinkat(&dir, tmp_name.as_c_str(), AtFlags::empty());
        let fd = rustix::fs::openat(
            &dir,
            tmp_name.as_c_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(io_err(rel))?;
        let mut file = std::fs::File::from(fd);
        let written = fill(&mut file).and_then(|()| file.sync_all());
        let finish = written.map_err(|source| UntrustedError::Io {
            path: display(rel),
            source,
        });
        let finish = finish.and_then(|()| {
            if rustix::process::geteuid().as_raw() != st.st_uid {
                rustix::fs::fchown(
                    &file,
                    Some(rustix::process::Uid::from_raw(st.st_uid)),
                    Some(rustix::process::Gid::from_raw(st.st_gid)),
                )
                .map_err(io_err(rel))?;
            }
            rustix::fs::fchmod(&file, Mode::from_raw_mode(st.st_mode & 0o7777))
                .map_err(io_err(rel))?;
            rustix::fs::renameat(&dir, tmp_name.as_c_str(), &dir, name.as_c_str())
                .map_err(io_err(rel))
        });
        if finish.is_err() {
            let _ = rustix::fs::unlinkat(&dir, tmp_name.as_c_str(), AtFlags::empty());
        }
        finish
    }

    /// The folder holding `rel`, opened component by component without following
    /// symlinks, and the last component's name.
    fn parent_of(&self, rel: &[u8]) -> Result<(OwnedFd, std::ffi::CString), UntrustedError> {
        let parts: Vec<&[u8]> = rel
            .split(|&b| b == b'/')
            .filter(|p| !p.is_empty())
            .collect();
        let Some((last, dirs)) = parts.split_last() else {
            return Err(UntrustedError::NotAFile {
                path: display(rel),
                what: "the root folder",
            });
        };
        let mut dir = self.root.try_clone().map_err(|source| UntrustedError::Io {
            path: display(rel),
            source,
        })?;
        for part in dirs.iter().chain(std::iter::once(last)) {
            if *part == b".." || *part == b"." || part.contains(&0) {
                return Err(UntrustedError::NotAFile {
                    path: display(rel),
                    what: "a path that leaves its folder",
                });
            }
        }
        for part in dirs {
            let name = std::ffi::CString::new(*part).expect("NUL checked above");
            dir = open_dir_at(&dir, &name).map_err(|e| match e {
                rustix::io::Errno::NOTDIR | rustix::io::Errno::LOOP => UntrustedError::NotAFile {
                    path: display(rel),
                    what: "below a symlink or a file",
                },
                e => io_err(rel)(e),
            })?;
        }
        let name = std::ffi::CString::new(*last).expect("NUL checked above");
        Ok((dir, name))
    }
}

fn kind_of_stat(st: &rustix::fs::Stat) -> EntryKind {
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => EntryKind::File {
            size: st.st_size as u64,
            executable: st.st_mode & 0o111 != 0,
        },
        FileType::Symlink => EntryKind::Symlink,
        FileType::Directory => EntryKind::Dir { opaque: false },
        FileType::CharacterDevice if st.st_rdev == 0 => EntryKind::Whiteout,
        other => EntryKind::Special(kind_name(other)),
    }
}

/// The kind of the entry `name` in `dir` whose status is `st`: as [`kind_of_stat`],
/// and an empty file marked `user.overlay.whiteout` (the whiteout an ordinary user can
/// make, and what a shipped workspace's collector writes when not root) is a whiteout.
/// An agent cannot set that attribute through an overlay (overlayfs refuses its own
/// attributes), so only Handoff's own writers make one.
fn kind_at(dir: &OwnedFd, name: &CStr, st: &rustix::fs::Stat) -> EntryKind {
    let kind = kind_of_stat(st);
    if let EntryKind::File { size: 0, .. } = kind {
        let marked = rustix::fs::openat(dir, name, FILE_FLAGS, Mode::empty())
            .ok()
            .filter(|fd| {
                rustix::fs::fstat(fd)
                    .is_ok_and(|s| FileType::from_raw_mode(s.st_mode) == FileType::RegularFile)
            })
            .is_some_and(|fd| {
                let mut buf = [0u8; 64];
                rustix::fs::fgetxattr(&fd, "user.overlay.whiteout", &mut buf).is_ok()
            });
        if marked {
            return EntryKind::Whiteout;
        }
    }
    kind
}

fn open_dir_at(dir: &OwnedFd, name: &CStr) -> Result<OwnedFd, rustix::io::Errno> {
    match rustix::fs::openat(dir, name, DIR_FLAGS, Mode::empty()) {
        Err(rustix::io::Errno::ACCESS) => {
            make_readable(dir, name)?;
            rustix::fs::openat(dir, name, DIR_FLAGS, Mode::empty())
        }
        other => other,
    }
}

/// Gives the owner read (and, for folders, search and write) permission on `name`,
/// when this process owns it and it is not a symlink.
fn make_readable(dir: &OwnedFd, name: &CStr) -> Result<(), rustix::io::Errno> {
    let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
    if st.st_uid != rustix::process::geteuid().as_raw() {
        return Err(rustix::io::Errno::ACCESS);
    }
    let add = match FileType::from_raw_mode(st.st_mode) {
        FileType::Directory => 0o700,
        FileType::RegularFile => 0o600,
        _ => return Err(rustix::io::Errno::ACCESS),
    };
    // The tree no longer changes (its container has ended), so the type seen above
    // is the type changed here.
    rustix::fs::chmodat(
        dir,
        name,
        Mode::from_raw_mode((st.st_mode & 0o7777) | add),
        AtFlags::empty(),
    )
}

fn is_opaque(dir: &OwnedFd) -> bool {
    let mut buf = [0u8; 8];
    matches!(
        rustix::fs::fgetxattr(dir, "user.overlay.opaque", &mut buf),
        Ok(n) if buf[..n] == *b"y"
    ) || matches!(
        rustix::fs::fgetxattr(dir, "trusted.overlay.opaque", &mut buf),
        Ok(n) if buf[..n] == *b"y"
    )
}

/// Names in an open folder, sorted, without `.` and `..`.
fn list_names(dir: &OwnedFd) -> Result<Vec<std::ffi::CString>, rustix::io::Errno> {
    let fd = rustix::fs::openat(dir, c".", DIR_FLAGS, Mode::empty())?;
    let mut reader = rustix::fs::Dir::new(fd)?;
    let mut names = Vec::new();
    while let Some(entry) = reader.read() {
        let entry = entry?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        names.push(name.to_owned());
    }
    names.sort();
    Ok(names)
}

/// Removes the tree at `path` whatever the agent did to it: folders it made
/// unreadable or unwritable are opened up first (when this process owns them),
/// symlinks are removed, never followed. A missing tree is not an error.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    let parent = path.parent().unwrap_or(Path::new("/"));
    let Some(name) = path.file_name() else {
        return Err(io::Error::other(format!(
            "refusing to remove {}",
            path.display()
        )));
    };
    let parent = match rustix::fs::openat(rustix::fs::CWD, parent, DIR_FLAGS, Mode::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let name = std::ffi::CString::new(name.as_bytes()).map_err(io::Error::other)?;
    remove_at(&parent, &name).map_err(|e| {
        io::Error::new(
            io::Error::from(e).kind(),
            format!("cannot remove {}: {e}", path.display()),
        )
    })
}

fn remove_at(dir: &OwnedFd, name: &CStr) -> Result<(), rustix::io::Errno> {
    let st = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(rustix::io::Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        return match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
            Err(rustix::io::Errno::NOENT) => Ok(()),
            other => other,
        };
    }
    // An empty folder we cannot read (overlayfs's own `work` folder) goes at once.
    if rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR).is_ok() {
        return Ok(());
    }
    if st.st_mode & 0o700 != 0o700 && st.st_uid == rustix::process::geteuid().as_raw() {
        rustix::fs::chmodat(
            dir,
            name,
            Mode::from_raw_mode((st.st_mode & 0o7777) | 0o700),
            AtFlags::empty(),
        )?;
    }
    let sub = rustix::fs::openat(dir, name, DIR_FLAGS, Mode::empty())?;
    for child in list_names(&sub)? {
        remove_at(&sub, &child)?;
    }
    drop(sub);
    match rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
        Err(rustix::io::Errno::NOENT) => Ok(()),
        other => other,
    }
}

/// What [`copy_tree`] copied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Copied {
    pub files: u64,
    pub bytes: u64,
}

/// Copies the tree at `from` (sandbox-written: read as in [`UntrustedTree`]) into
/// `to`, which must not exist yet: folders, regular files with their permission bits
/// (set-id bits dropped) and symlinks as symlinks, never followed; whiteouts, FIFOs,
/// sockets and devices are left out. Everything made is owned by `owner` when given.
/// Refused when the files hold more than `max_bytes`, or the walk's bounds are passed;
/// then `to` is removed again. Nothing at `from` copies as an empty folder.
pub fn copy_tree(
    from: &Path,
    to: &Path,
    owner: Option<(u32, u32)>,
    max_bytes: u64,
) -> Result<Copied, UntrustedError> {
    let result = copy_tree_inner(from, to, owner, max_bytes);
    if result.is_err() {
        let _ = remove_tree(to);
    }
    result
}

fn copy_tree_inner(
    from: &Path,
    to: &Path,
    owner: Option<(u32, u32)>,
    max_bytes: u64,
) -> Result<Copied, UntrustedError> {
    let made = |path: &Path| {
        let path = path.to_path_buf();
        move |source: io::Error| UntrustedError::Io {
            path: path.display().to_string(),
            source,
        }
    };
    let chown = |path: &Path| -> Result<(), UntrustedError> {
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(made(path))?;
        }
        Ok(())
    };
    std::fs::create_dir(to).map_err(made(to))?;
    chown(to)?;
    let mut copied = Copied::default();
    let Some(tree) = UntrustedTree::open(from)? else {
        return Ok(copied);
    };
    let mut failed = None;
    tree.walk(WalkLimits::default(), |entry| {
        if failed.is_some() {
            return Visit::Skip;
        }
        let Some(dest) = join_below(to, &entry.path) else {
            return Visit::Skip;
        };
        let step = (|| -> Result<Visit, UntrustedError> {
            match &entry.kind {
                EntryKind::Dir { .. } => {
                    std::fs::create_dir(&dest).map_err(made(&dest))?;
                    chown(&dest)?;
                    Ok(Visit::Descend)
                }
                EntryKind::File { .. } => {
                    let (mut file, size) = tree.open_file(&entry.path)?;
                    copied.bytes += size;
                    if copied.bytes > max_bytes {
                        return Err(UntrustedError::TooLarge {
                            path: tree.path().display().to_string(),
                            limit: max_bytes,
                        });
                    }
                    let mode = rustix::fs::fstat(&file)
                        .map_err(io_err(&entry.path))?
                        .st_mode
                        & 0o777;
                    let mut out = std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(&dest)
                        .map_err(made(&dest))?;
                    io::copy(&mut (&mut file).take(size), &mut out).map_err(made(&dest))?;
                    use std::os::unix::fs::PermissionsExt;
                    out.set_permissions(std::fs::Permissions::from_mode(mode))
                        .map_err(made(&dest))?;
                    chown(&dest)?;
                    copied.files += 1;
                    Ok(Visit::Skip)
                }
                EntryKind::Symlink => {
                    let target = tree.read_link(&entry.path)?;
                    std::os::unix::fs::symlink(OsStr::from_bytes(&target), &dest)
                        .map_err(made(&dest))?;
                    chown(&dest)?;
                    copied.files += 1;
                    Ok(Visit::Skip)
                }
                EntryKind::Whiteout | EntryKind::Special(_) => Ok(Visit::Skip),
            }
        })();
        match step {
            Ok(v) => v,
            Err(e) => {
                failed = Some(e);
                Visit::Skip
            }
        }
    })?;
    match failed {
        Some(e) => Err(e),
        None => Ok(copied),
    }
}

/// `rel` as a path below `root`, refusing components that would leave it.
pub fn join_below(root: &Path, rel: &[u8]) -> Option<PathBuf> {
    let mut out = root.to_path_buf();
    for part in rel.split(|&b| b == b'/').filter(|p| !p.is_empty()) {
        if part == b".." || part == b"." || part.contains(&0) {
            return None;
        }
        out.push(OsStr::from_bytes(part));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn walk_all(tree: &UntrustedTree) -> Vec<(String, EntryKind)> {
        let mut out = Vec::new();
        tree.walk(WalkLimits::default(), |e| {
            out.push((display(&e.path), e.kind.clone()));
            Visit::Descend
        })
        .unwrap();
        out
    }

    #[test]
    fn walks_report_every_kind_and_never_follow_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("upper");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/a.txt"), "a").unwrap();
        std::fs::write(root.join("run.sh"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(root.join("run.sh"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        symlink("/etc", root.join("etc-link")).unwrap();
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            root.join("fifo"),
            Mode::from_raw_mode(0o644),
        )
        .unwrap();
        let tree = UntrustedTree::open(&root).unwrap().unwrap();
        assert_eq!(
            walk_all(&tree),
            vec![
                ("etc-link".into(), EntryKind::Symlink),
                ("fifo".into(), EntryKind::Special("a FIFO")),
                (
                    "run.sh".into(),
                    EntryKind::File {
                        size: 10,
                        executable: true
                    }
                ),
                ("sub".into(), EntryKind::Dir { opaque: false }),
                (
                    "sub/a.txt".into(),
                    EntryKind::File {
                        size: 1,
                        executable: false
                    }
                ),
            ]
        );
        assert_eq!(tree.read_link(b"etc-link").unwrap(), b"/etc");
    }

    #[test]
    fn reads_refuse_symlinks_fifos_escapes_and_oversized_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("home");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(dir.path().join("outside.txt"), "host secret").unwrap();
        symlink(dir.path().join("outside.txt"), root.join("link.txt")).unwrap();
        symlink(dir.path(), root.join("linkdir")).unwrap();
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            root.join("fifo"),
            Mode::from_raw_mode(0o644),
        )
        .unwrap();
        std::fs::write(root.join("big"), vec![b'x'; 100]).unwrap();
        std::fs::write(root.join("ok"), "fine").unwrap();
        let tree = UntrustedTree::open(&root).unwrap().unwrap();
        let err = |rel: &str| tree.read_file(rel.as_bytes(), 64).unwrap_err().to_string();
        assert!(err("link.txt").contains("symlink"), "{}", err("link.txt"));
        assert!(err("linkdir/outside.txt").contains("symlink"));
        assert!(err("fifo").contains("FIFO"), "{}", err("fifo"));
        assert!(err("big").contains("larger than 64"));
        assert!(err("../outside.txt").contains("leaves its folder"));
        assert_eq!(tree.read_file(b"ok", 64).unwrap(), b"fine");
        assert_eq!(tree.read_file_if_any(b"missing", 64).unwrap(), None);
        // A symlinked root is refused too.
        assert!(UntrustedTree::open(&root.join("linkdir")).is_err());
    }

    #[test]
    fn walks_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let mut deep = dir.path().join("t");
        for _ in 0..5 {
            deep.push("d");
        }
        std::fs::create_dir_all(&deep).unwrap();
        let tree = UntrustedTree::open(&dir.path().join("t")).unwrap().unwrap();
        let limits = WalkLimits {
            max_entries: 100,
            max_depth: 3,
        };
        assert!(matches!(
            tree.walk(limits, |_| Visit::Descend),
            Err(UntrustedError::TooDeep { .. })
        ));
        let limits = WalkLimits {
            max_entries: 2,
            max_depth: 100,
        };
        assert!(matches!(
            tree.walk(limits, |_| Visit::Descend),
            Err(UntrustedError::TooManyEntries { .. })
        ));
    }

    #[test]
    fn removal_handles_locked_folders_and_leaves_link_targets_alone() {
        let dir = tempfile::tempdir().unwrap();
        let keep = dir.path().join("keep");
        std::fs::create_dir_all(&keep).unwrap();
        std::fs::write(keep.join("precious"), "x").unwrap();
        let root = dir.path().join("ws");
        std::fs::create_dir_all(root.join("locked/inner")).unwrap();
        std::fs::write(root.join("locked/inner/f"), "x").unwrap();
        std::fs::write(root.join("locked/unreadable"), "x").unwrap();
        std::fs::set_permissions(
            root.join("locked/unreadable"),
            std::fs::Permissions::from_mode(0o000),
        )
        .unwrap();
        symlink(&keep, root.join("to-keep")).unwrap();
        std::fs::set_permissions(
            root.join("locked/inner"),
            std::fs::Permissions::from_mode(0o000),
        )
        .unwrap();
        std::fs::set_permissions(root.join("locked"), std::fs::Permissions::from_mode(0o000))
            .unwrap();
        remove_tree(&root).unwrap();
        assert!(!root.exists());
        assert!(keep.join("precious").exists());
        remove_tree(&root).unwrap();
    }

    #[test]
    fn copies_keep_links_as_links_leave_out_specials_and_stop_at_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("home");
        std::fs::create_dir_all(from.join(".local/bin")).unwrap();
        std::fs::write(from.join(".local/bin/tool"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            from.join(".local/bin/tool"),
            std::fs::Permissions::from_mode(0o4755),
        )
        .unwrap();
        std::fs::write(from.join(".toolrc"), "x = 1\n").unwrap();
        symlink("/etc/passwd", from.join("passwd")).unwrap();
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            from.join("fifo"),
            Mode::from_raw_mode(0o644),
        )
        .unwrap();
        let to = dir.path().join("copy");
        let copied = copy_tree(&from, &to, None, 1 << 20).unwrap();
        assert_eq!(
            copied,
            Copied {
                files: 3,
                bytes: 16
            }
        );
        assert_eq!(
            std::fs::read_to_string(to.join(".toolrc")).unwrap(),
            "x = 1\n"
        );
        let mode = std::fs::metadata(to.join(".local/bin/tool"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o755, "set-id bits are dropped");
        assert_eq!(
            std::fs::read_link(to.join("passwd")).unwrap(),
            Path::new("/etc/passwd"),
            "a link is copied, not what it points to"
        );
        assert!(!to.join("fifo").exists());
        // Past the bound: refused, and nothing half-copied stays.
        let small = dir.path().join("small");
        assert!(matches!(
            copy_tree(&from, &small, None, 8),
            Err(UntrustedError::TooLarge { .. })
        ));
        assert!(!small.exists());
        // Nothing there: an empty folder.
        let empty = dir.path().join("empty");
        assert_eq!(
            copy_tree(&dir.path().join("none"), &empty, None, 8).unwrap(),
            Copied::default()
        );
        assert!(empty.is_dir());
    }
}
