//! The Debian base image of the built-in agents, made with no registry: mmdebstrap
//! writes a minimal bookworm root file system as a tar on its stdout, which is
//! streamed into the engine as `docker import`.
//!
//! Its tag is `handoff/base:<hash of the mmdebstrap arguments and import changes>`:
//! the same host mirror and package list give the same tag, and it is made once.

use std::collections::VecDeque;

use bollard::Docker;
use bytes::Bytes;
use futures_util::Stream;
use tokio::io::{AsyncBufReadExt, AsyncReadExt};

use super::hash::InputHash;
use super::{apt, builder, npm, ImageError};

/// The Debian release of the base.
pub const SUITE: &str = "bookworm";

/// What the agent CLIs need beyond `minbase` (which has coreutils, and libc-bin with
/// the C.UTF-8 locale): bash (both CLIs run commands with it), git, TLS roots for
/// their APIs, ps/kill, and ripgrep (Claude Code's search tool).
pub const PACKAGES: &[&str] = &[
    "bash",
    "ca-certificates",
    "git",
    "procps",
    "python3",
    "ripgrep",
];

/// Documentation, manuals and translations are left out of the image; licenses stay.
const DPKG_OPTIONS: &[&str] = &[
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
];

/// Dockerfile instructions applied by the import (an imported image has no config).
const IMPORT_CHANGES: &[&str] = &[
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    "CMD [\"bash\"]",
];

pub struct BaseImage {
    /// `handoff/base:<hash>`.
    pub reference: String,
    pub id: String,
    pub cached: bool,
}

/// The mmdebstrap command line (without the program name) for `mirror`.
pub fn mmdebstrap_args(mirror: &str) -> Vec<String> {
    let mut args = vec![
        "--variant=minbase".to_string(),
        format!("--include={}", PACKAGES.join(",")),
    ];
    args.extend(DPKG_OPTIONS.iter().map(|o| format!("--dpkgopt={o}")));
    args.extend([SUITE.to_string(), "-".to_string(), mirror.to_string()]);
    args
}

pub fn reference_for(args: &[String]) -> String {
    let mut hash = InputHash::new("handoff/base");
    for arg in args {
        hash.field("mmdebstrap", arg.as_bytes());
    }
    for change in IMPORT_CHANGES {
        hash.field("change", change.as_bytes());
    }
    format!("handoff/base:{}", hash.finish())
}

/// The base image, made first if the engine does not have it.
pub async fn ensure(
    docker: &Docker,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<BaseImage, ImageError> {
    let mirror = apt::host_mirror(SUITE);
    let args = mmdebstrap_args(&mirror);
    let reference = reference_for(&args);
    if let Some(id) = builder::image_id(docker, &reference).await? {
        return Ok(BaseImage {
            reference,
            id,
            cached: true,
        });
    }
    progress(&format!(
        "making the base image {reference}: Debian {SUITE} from {mirror} with mmdebstrap \
         (once; about a minute or two)"
    ));
    let started = std::time::Instant::now();
    let mut child = tokio::process::Command::new("mmdebstrap")
        .args(&args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ImageError::MmdebstrapMissing,
            _ => ImageError::Mmdebstrap {
                status: "could not start".into(),
                tail: e.to_string(),
            },
        })?;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        unreachable!("both pipes were asked for");
    };

    let import = builder::import_rootfs(docker, read_chunks(stdout), &reference, IMPORT_CHANGES);
    let log = async {
        let mut tail = VecDeque::new();
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            progress(&format!("mmdebstrap: {line}"));
            if tail.len() == 20 {
                tail.pop_front();
            }
            tail.push_back(line);
        }
        Vec::from(tail).join("\n")
    };
    let (imported, tail) = futures_util::future::join(import, log).await;
    let status = child.wait().await.map_err(|e| ImageError::Mmdebstrap {
        status: "lost".into(),
        tail: e.to_string(),
    })?;
    if !status.success() {
        // A failed run may still have sent a partial tar that the engine imported.
        builder::remove(docker, &reference).await;
        return Err(ImageError::Mmdebstrap {
            status: status.to_string(),
            tail: npm::tail(&tail, 20),
        });
    }
    imported?;
    let id = builder::image_id(docker, &reference)
        .await?
        .ok_or_else(|| ImageError::Engine {
            what: format!("the imported base image {reference} is missing"),
            message: "the engine accepted the import but has no such image".into(),
        })?;
    progress(&format!(
        "made {reference} in {:.0} s",
        started.elapsed().as_secs_f64()
    ));
    Ok(BaseImage {
        reference,
        id,
        cached: false,
    })
}

/// A reader as a stream of chunks, ending at end of file or after the first error.
fn read_chunks(
    reader: impl tokio::io::AsyncRead + Unpin + Send + 'static,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    futures_util::stream::unfold(Some(reader), |reader| async move {
        let mut reader = reader?;
        let mut buf = vec![0u8; 256 << 10];
        match reader.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), Some(reader)))
            }
            Err(e) => Some((Err(e), None)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_tag_follows_the_command_line() {
        let args = mmdebstrap_args("http://deb.debian.org/debian");
        assert_eq!(
            args[args.len() - 3..],
            ["bookworm", "-", "http://deb.debian.org/debian"]
        );
        assert!(args.contains(&"--include=bash,ca-certificates,git,procps,python3,ripgrep".into()));
        let tag = reference_for(&args);
        assert_eq!(
            tag,
            reference_for(&mmdebstrap_args("http://deb.debian.org/debian"))
        );
        assert!(tag.starts_with("handoff/base:") && tag.len() == "handoff/base:".len() + 16);
        assert_ne!(
            tag,
            reference_for(&mmdebstrap_args("http://proxy:3142/debian"))
        );
    }
}
