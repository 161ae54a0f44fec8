//! A build context: a folder on the host, listed once in a fixed order, hashed and
//! sent to the engine as a tar stream.
//!
//! The listing, the hash and the tar agree: what is hashed is exactly what is sent
//! (relative path, kind, executable bit, content or link target), and nothing else —
//! not modification times or owners, which differ between two resolutions of the same
//! inputs.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::mpsc;

use super::hash::{sha256_of, InputHash};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Dir,
    File { executable: bool },
    Symlink(PathBuf),
}

#[derive(Debug, Clone)]
struct Entry {
    /// Relative to the context root, `/`-separated.
    path: String,
    kind: Kind,
}

#[derive(Debug, Clone)]
pub struct BuildContext {
    root: PathBuf,
    entries: Vec<Entry>,
}

impl BuildContext {
    /// Lists everything under `root`. Symbolic links are kept as links, not followed;
    /// sockets and other special files are left out (an engine cannot copy them).
    pub fn scan(root: &Path) -> io::Result<BuildContext> {
        BuildContext::scan_keeping(root, &|_, _| true)
    }

    /// Lists what is under `root` that `keep` keeps: it is asked with each relative
    /// path (`/`-separated) and whether it is a folder; a folder it refuses is not
    /// entered.
    pub fn scan_keeping(
        root: &Path,
        keep: &dyn Fn(&str, bool) -> bool,
    ) -> io::Result<BuildContext> {
        let mut entries = Vec::new();
        walk(root, "", keep, &mut entries)?;
        // Byte order of the paths: the same on every machine and file system.
        entries.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
        Ok(BuildContext {
            root: root.to_path_buf(),
            entries,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether the context holds a regular file at `path` (relative, `/`-separated).
    pub fn has_file(&self, path: &str) -> bool {
        self.entries
            .iter()
            .any(|e| e.path == path && matches!(e.kind, Kind::File { .. }))
    }

    /// Feeds every entry into `hash`: reads every file. Blocking.
    pub fn hash_into(&self, hash: &mut InputHash) -> io::Result<()> {
        hash.field("entries", &(self.entries.len() as u64).to_le_bytes());
        for entry in &self.entries {
            hash.field("path", entry.path.as_bytes());
            match &entry.kind {
                Kind::Dir => hash.field("dir", b""),
                Kind::Symlink(target) => {
                    hash.field("symlink", target.as_os_str().as_encoded_bytes())
                }
                Kind::File { executable } => {
                    let file = std::fs::File::open(self.root.join(&entry.path))?;
                    let digest = sha256_of(file)?;
                    let kind = if *executable { "exec" } else { "file" };
                    hash.field(kind, &digest);
                }
            }
        }
        Ok(())
    }

    /// The context as a tar stream for the engine. The tar is written by a blocking
    /// task that lives as long as the stream: dropping the stream ends it at its next
    /// write. A file that cannot be read ends the stream with that error.
    pub fn into_tar_stream(self) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
        let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(8);
        tokio::task::spawn_blocking(move || {
            let mut writer = ChunkWriter {
                tx: tx.clone(),
                buf: Vec::with_capacity(CHUNK),
            };
            let written = self.write_tar(&mut writer).and_then(|()| writer.flush());
            if let Err(e) = written {
                // The receiver may be gone already; then nobody needs the error.
                let _ = tx.blocking_send(Err(e));
            }
        });
        futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        })
    }

    fn write_tar(&self, out: &mut impl Write) -> io::Result<()> {
        let mut tar = tar::Builder::new(out);
        for entry in &self.entries {
            let mut header = tar::Header::new_gnu();
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(0);
            match &entry.kind {
                Kind::Dir => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(0o755);
                    header.set_size(0);
                    tar.append_data(&mut header, &entry.path, io::empty())?;
                }
                Kind::Symlink(target) => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_mode(0o777);
                    header.set_size(0);
                    tar.append_link(&mut header, &entry.path, target)?;
                }
                Kind::File { executable } => {
                    let file = std::fs::File::open(self.root.join(&entry.path))?;
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_mode(if *executable { 0o755 } else { 0o644 });
                    header.set_size(file.metadata()?.len());
                    tar.append_data(&mut header, &entry.path, file)?;
                }
            }
        }
        tar.into_inner()?.flush()
    }
}

fn walk(
    root: &Path,
    prefix: &str,
    keep: &dyn Fn(&str, bool) -> bool,
    out: &mut Vec<Entry>,
) -> io::Result<()> {
    let dir = root.join(prefix);
    for item in std::fs::read_dir(&dir)? {
        let item = item?;
        let name = item.file_name();
        let Some(name) = name.to_str() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: file name is not UTF-8", item.path().display()),
            ));
        };
        let path = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}/{name}")
        };
        let meta = item.path().symlink_metadata()?;
        let kind = if meta.is_dir() {
            Kind::Dir
        } else if meta.file_type().is_symlink() {
            Kind::Symlink(std::fs::read_link(item.path())?)
        } else if meta.is_file() {
            use std::os::unix::fs::PermissionsExt;
            Kind::File {
                executable: meta.permissions().mode() & 0o111 != 0,
            }
        } else {
            continue;
        };
        let is_dir = kind == Kind::Dir;
        if !keep(&path, is_dir) {
            continue;
        }
        out.push(Entry {
            path: path.clone(),
            kind,
        });
        if is_dir {
            walk(root, &path, keep, out)?;
        }
    }
    Ok(())
}

const CHUNK: usize = 256 << 10;

/// Cuts the tar into chunks for the engine's request body.
struct ChunkWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChunkWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the Docker engine stopped reading the build context",
            )
        })
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn hash_of(dir: &Path) -> String {
        let mut h = InputHash::new("test");
        BuildContext::scan(dir).unwrap().hash_into(&mut h).unwrap();
        h.finish()
    }

    fn write(dir: &Path, path: &str, content: &str) {
        let full = dir.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, content).unwrap();
    }

    #[test]
    fn the_hash_follows_paths_contents_modes_and_links_not_times() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(d, "Dockerfile", "FROM scratch\n");
        write(d, "agent/bin/tool", "#!/bin/sh\n");
        let first = hash_of(d);
        assert_eq!(first, hash_of(d), "stable");

        // A new modification time alone changes nothing.
        let f = std::fs::File::options()
            .write(true)
            .open(d.join("Dockerfile"))
            .unwrap();
        f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(first, hash_of(d));

        let mut seen = vec![first.clone()];
        let mut changed = |what: &str, d: &Path| {
            let h = hash_of(d);
            assert!(!seen.contains(&h), "{what} did not change the hash");
            seen.push(h);
        };
        write(d, "Dockerfile", "FROM scratch\nRUN true\n");
        changed("content", d);
        std::fs::set_permissions(
            d.join("agent/bin/tool"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        changed("executable bit", d);
        std::fs::rename(d.join("agent/bin/tool"), d.join("agent/bin/tool2")).unwrap();
        changed("path", d);
        std::os::unix::fs::symlink("bin/tool2", d.join("agent/link")).unwrap();
        changed("new link", d);
        std::fs::remove_file(d.join("agent/link")).unwrap();
        std::os::unix::fs::symlink("bin/other", d.join("agent/link")).unwrap();
        changed("link target", d);
        std::fs::create_dir(d.join("empty")).unwrap();
        changed("empty folder", d);
    }

    #[tokio::test]
    async fn the_tar_holds_what_was_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(d, "Dockerfile", "FROM scratch\n");
        let long = format!("{}/file", "x".repeat(150));
        write(d, &long, "deep");
        std::os::unix::fs::symlink("Dockerfile", d.join("link")).unwrap();
        let context = BuildContext::scan(d).unwrap();
        assert!(context.has_file("Dockerfile") && context.has_file(&long));
        assert!(!context.has_file("link"));

        let mut bytes = Vec::new();
        let mut stream = Box::pin(context.into_tar_stream());
        while let Some(chunk) = stream.next().await {
            bytes.extend_from_slice(&chunk.unwrap());
        }
        let mut archive = tar::Archive::new(&bytes[..]);
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().display().to_string();
            let mut content = String::new();
            std::io::Read::read_to_string(&mut entry, &mut content).unwrap();
            let link = entry.link_name().unwrap().map(|l| l.display().to_string());
            seen.push((path, content, link));
        }
        let want = vec![
            ("Dockerfile".to_string(), "FROM scratch\n".to_string(), None),
            (
                "link".to_string(),
                String::new(),
                Some("Dockerfile".to_string()),
            ),
            ("x".repeat(150), String::new(), None),
            (long.clone(), "deep".to_string(), None),
        ];
        assert_eq!(seen, want);
    }
}
