//! Bytes in and out of a pod through `exec`. The 1.20 apiserver speaks only version 4
//! of the streaming protocol, where the client cannot close stdin without closing the
//! whole stream: so an archive goes in with its length (`head -c N | tar -x`), and the
//! writer is kept open until the command has ended.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use ::kube::api::{AttachParams, AttachedProcess};

use super::{spec, KubeSandbox};
use crate::sandbox::SandboxError;

/// What an `exec` left: its status and its stderr (bounded).
struct Ended {
    ok: bool,
    message: String,
    stderr: String,
}

fn exec_err(what: &str, e: impl std::fmt::Display) -> SandboxError {
    SandboxError::Cluster(format!("{what}: {e}"))
}

async fn start(
    sandbox: &KubeSandbox,
    pod: &str,
    container: &str,
    argv: &[String],
    stdin: bool,
) -> Result<AttachedProcess, SandboxError> {
    let params = AttachParams::default()
        .container(container)
        .stdin(stdin)
        .stdout(true)
        .stderr(true);
    sandbox
        .pods()
        .exec(pod, argv.to_vec(), &params)
        .await
        .map_err(|e| exec_err(&format!("exec in {pod}/{container}"), e))
}

/// Waits for the end of `process`, reading its stderr (up to 64 KiB).
async fn ended(mut process: AttachedProcess) -> Result<Ended, SandboxError> {
    let mut stderr = String::new();
    if let Some(mut err) = process.stderr() {
        let mut buf = Vec::new();
        let _ = (&mut err).take(64 << 10).read_to_end(&mut buf).await;
        stderr = String::from_utf8_lossy(&buf).into_owned();
    }
    let status = match process.take_status() {
        Some(s) => s.await,
        None => None,
    };
    let _ = process.join().await;
    let (ok, message) = match status {
        Some(s) => (
            s.status.as_deref() == Some("Success"),
            s.message.unwrap_or_default(),
        ),
        None => (false, "the stream ended without a status".into()),
    };
    Ok(Ended {
        ok,
        message,
        stderr,
    })
}

/// Streams `archive` into the receiving container of `pod`, unpacks it at `/`, and
/// lets the agent start.
pub(super) async fn send(
    sandbox: &KubeSandbox,
    pod: &str,
    archive: &[u8],
) -> Result<(), SandboxError> {
    // The agent's image may have nothing of its own: the copied busybox does it all.
    let b = spec::AGENT_BUSYBOX;
    let script = format!(
        "{b} head -c {} | {b} tar -x -f - -C / && : > {}",
        archive.len(),
        spec::RECEIVED_MARKER
    );
    let argv = vec![b.to_string(), "sh".to_string(), "-c".to_string(), script];
    let mut process = start(sandbox, pod, spec::RECEIVE, &argv, true).await?;
    let mut stdin = process
        .stdin()
        .ok_or_else(|| exec_err("exec", "no stdin"))?;
    let mut stdout = process.stdout();
    // stdout is empty, but must be drained for the stream to make progress.
    let drain = async {
        if let Some(out) = stdout.as_mut() {
            let mut sink = Vec::new();
            let _ = out.read_to_end(&mut sink).await;
        }
    };
    let write = async {
        stdin.write_all(archive).await?;
        stdin.flush().await
    };
    let (written, _) = tokio::join!(write, drain);
    written.map_err(|e| exec_err(&format!("sending the workspace to {pod}"), e))?;
    let end = ended(process).await?;
    // Only now may stdin go: with protocol v4 its end closes the whole stream.
    drop(stdin);
    if !end.ok {
        return Err(SandboxError::Cluster(format!(
            "unpacking the workspace in {pod} failed: {} {}",
            end.message.trim(),
            end.stderr.trim()
        )));
    }
    Ok(())
}

/// Runs `argv` in `container` of `pod` and waits for it.
pub(super) async fn run(
    sandbox: &KubeSandbox,
    pod: &str,
    container: &str,
    argv: &[&str],
) -> Result<(), SandboxError> {
    let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
    let mut process = start(sandbox, pod, container, &argv, false).await?;
    if let Some(mut out) = process.stdout() {
        let mut sink = Vec::new();
        let _ = (&mut out).take(64 << 10).read_to_end(&mut sink).await;
    }
    let end = ended(process).await?;
    if end.ok {
        Ok(())
    } else {
        Err(SandboxError::Cluster(format!(
            "`{}` in {pod}/{container} failed: {} {}",
            argv.join(" "),
            end.message.trim(),
            end.stderr.trim()
        )))
    }
}

/// An archive of `path` (absolute) of `pod`, named from its last component (as the
/// Engine API names one), read from the keeper container into a temporary file; `None`
/// when nothing is at `path`. Fails past `max_bytes`.
pub(super) async fn archive(
    sandbox: &KubeSandbox,
    pod: &str,
    path: &str,
    max_bytes: u64,
) -> Result<Option<std::fs::File>, SandboxError> {
    let (parent, name) = match path.trim_end_matches('/').rsplit_once('/') {
        Some(("", name)) => ("/", name),
        Some((parent, name)) => (parent, name),
        None => ("/", path),
    };
    const MISSING: &str = "handoff: nothing there";
    // The keeper runs the tools image.
    let argv: Vec<String> = [
        spec::TOOLS_BUSYBOX,
        "sh",
        "-c",
        "cd \"$1\" 2>/dev/null && [ -e \"$2\" ] || { echo \"$3\" >&2; exit 3; }; exec /bin/busybox tar -c -f - \"$2\"",
        "handoff-fetch",
        parent,
        name,
        MISSING,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut process = start(sandbox, pod, spec::KEEPER, &argv, false).await?;
    let mut out = process
        .stdout()
        .ok_or_else(|| exec_err("exec", "no stdout"))?;
    let file = tempfile::tempfile().map_err(|e| exec_err("a temporary file", e))?;
    let mut writer = tokio::fs::File::from_std(
        file.try_clone()
            .map_err(|e| exec_err("a temporary file", e))?,
    );
    let copied = tokio::io::copy(&mut (&mut out).take(max_bytes + 1), &mut writer)
        .await
        .map_err(|e| exec_err(&format!("reading {path} of {pod}"), e))?;
    writer
        .flush()
        .await
        .map_err(|e| exec_err("a temporary file", e))?;
    if copied > max_bytes {
        process.abort();
        return Err(SandboxError::Cluster(format!(
            "{path} of {pod} is larger than {max_bytes} bytes; nothing of it was brought back"
        )));
    }
    drop(out);
    let end = ended(process).await?;
    if !end.ok {
        if end.stderr.contains(MISSING) {
            return Ok(None);
        }
        return Err(SandboxError::Cluster(format!(
            "reading {path} of {pod} failed: {} {}",
            end.message.trim(),
            end.stderr.trim()
        )));
    }
    let mut file = file;
    use std::io::Seek;
    file.seek(std::io::SeekFrom::Start(0))
        .map_err(|e| exec_err("a temporary file", e))?;
    Ok(Some(file))
}
