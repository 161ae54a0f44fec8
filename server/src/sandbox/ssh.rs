//! A Docker engine over ssh: a unix socket of this process's own, where every
//! connection bollard opens is carried by `ssh [-F CONFIG] [-i KEY] [-p PORT]
//! [-l USER] HOST -- docker system dial-stdio` (what the docker CLI does for
//! `ssh://` hosts).
//!
//! bollard 0.21 has an ssh transport of its own, but it hands `user@host:port` to ssh
//! as a host name (the port is not parsed) and needs the `openssh` crate; a socket
//! in front of the plain `ssh` client takes every form of destination, the user's
//! ssh configuration, agent and known hosts.
//!
//! The socket lives in a private folder (mode 0700) and the accepting task is owned
//! by the [`Tunnel`]: dropping it stops accepting and ends every `ssh` it started.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::AsyncWriteExt;

use super::endpoint::SshTarget;

pub struct Tunnel {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Tunnel {
    /// Starts accepting on a new socket. Needs a tokio runtime.
    pub fn start(target: &SshTarget) -> std::io::Result<Tunnel> {
        let handle = tokio::runtime::Handle::try_current().map_err(std::io::Error::other)?;
        let dir = tempfile::Builder::new().prefix("handoff-ssh-").tempdir()?;
        // tempdir makes it 0700 already; say so for whoever reads this.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )?;
        let socket = dir.path().join("docker.sock");
        let _guard = handle.enter();
        let listener = tokio::net::UnixListener::bind(&socket)?;
        let argv = ssh_argv(target);
        let task = handle.spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    break;
                };
                let argv = argv.clone();
                connections.spawn(async move {
                    if let Err(e) = carry(stream, &argv).await {
                        tracing::debug!(error = %e, "ssh connection to the engine ended");
                    }
                });
                // Forget the ones that ended.
                while connections.try_join_next().is_some() {}
            }
        });
        Ok(Tunnel {
            _dir: dir,
            socket,
            task,
        })
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }
}

/// The ssh command line for `target`: options first, the host after `--`-free
/// validation (a host never starts with `-`, see `endpoint`), then the remote command.
pub fn ssh_argv(target: &SshTarget) -> Vec<String> {
    let mut argv = vec![
        "ssh".to_string(),
        "-o".into(),
        "BatchMode=yes".into(),
        "-T".into(),
    ];
    if let Some(config) = &target.config {
        argv.push("-F".into());
        argv.push(config.display().to_string());
    }
    if let Some(key) = &target.key {
        argv.push("-i".into());
        argv.push(key.display().to_string());
    }
    if let Some(port) = target.port {
        argv.push("-p".into());
        argv.push(port.to_string());
    }
    if let Some(user) = &target.user {
        argv.push("-l".into());
        argv.push(user.clone());
    }
    argv.push(target.host.clone());
    argv.extend(["docker", "system", "dial-stdio"].map(String::from));
    argv
}

/// Carries one connection through one `ssh`, both ways, until either side ends.
async fn carry(stream: tokio::net::UnixStream, argv: &[String]) -> std::io::Result<()> {
    let mut child = tokio::process::Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut to_ssh = child.stdin.take().expect("piped");
    let mut from_ssh = child.stdout.take().expect("piped");
    let mut errors = child.stderr.take().expect("piped");
    let (mut from_client, mut to_client) = stream.into_split();
    let upstream = async {
        let r = tokio::io::copy(&mut from_client, &mut to_ssh).await;
        // The client is done sending: let the remote end know.
        let _ = to_ssh.shutdown().await;
        drop(to_ssh);
        r
    };
    let downstream = async {
        let r = tokio::io::copy(&mut from_ssh, &mut to_client).await;
        let _ = to_client.shutdown().await;
        r
    };
    let stderr = async {
        use tokio::io::AsyncReadExt;
        let mut text = Vec::new();
        let _ = (&mut errors).take(16 * 1024).read_to_end(&mut text).await;
        text
    };
    let (_, down, text) = tokio::join!(upstream, downstream, stderr);
    let status = child.wait().await?;
    if !status.success() {
        tracing::warn!(
            status = %status,
            stderr = %String::from_utf8_lossy(&text).trim(),
            "ssh to the Docker engine failed"
        );
    }
    down.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_and_user_go_to_ssh_as_options() {
        let argv = ssh_argv(&SshTarget {
            user: Some("deploy".into()),
            host: "10.0.0.2".into(),
            port: Some(2222),
            config: Some("/cfg".into()),
            key: None,
        });
        assert_eq!(
            argv.join(" "),
            "ssh -o BatchMode=yes -T -F /cfg -p 2222 -l deploy 10.0.0.2 docker system dial-stdio"
        );
    }
}
