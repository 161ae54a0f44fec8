//! Starting the proxy as its own process, detached from the front-end that needed it:
//! tasks outlive editors and terminals, so their egress proxy must too.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::server::{serve_until, ServeOptions};

/// Starts `exe args…` in a new session (no controlling terminal, its own process
/// group), stdin from /dev/null, stdout and stderr appended to `log` (created 0600),
/// working directory `/`. Returns its pid.
///
/// A thread waits for the child so that it never lingers as a zombie of a long-lived
/// front-end; the child does not depend on this process staying alive.
pub fn spawn_detached(exe: &Path, args: &[OsString], log: &Path) -> io::Result<u32> {
    let log_file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(log)?;
    let mut command = Command::new(exe);
    command
        .args(args)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file);
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn()?;
    let pid = child.id();
    std::thread::Builder::new()
        .name("egress-reaper".into())
        .spawn(move || {
            let _ = child.wait();
        })?;
    Ok(pid)
}

/// Arguments of the hidden `handoff egress serve` subcommand.
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct ServeArgs {
    /// Address to listen on for containers, e.g. the gateway of an internal network
    /// (172.18.0.1:3128). Repeat for several.
    #[arg(long = "listen", value_name = "ADDR")]
    pub listen: Vec<SocketAddr>,
    /// Control socket to create (mode 0600); its directory must exist.
    #[arg(long = "control", value_name = "PATH")]
    pub control: PathBuf,
    /// Exit after this many seconds with no task registered; 0 never exits.
    #[arg(long = "idle-exit", value_name = "SECONDS", default_value_t = 600)]
    pub idle_exit_secs: u64,
}

impl ServeArgs {
    pub fn options(&self) -> ServeOptions {
        ServeOptions {
            listen: self.listen.clone(),
            control_socket: self.control.clone(),
            idle_exit: (self.idle_exit_secs > 0).then(|| Duration::from_secs(self.idle_exit_secs)),
        }
    }

    /// The arguments after `handoff egress serve`, for [`spawn_detached`].
    pub fn to_args(&self) -> Vec<OsString> {
        let mut args = Vec::new();
        for addr in &self.listen {
            args.push("--listen".into());
            args.push(addr.to_string().into());
        }
        args.push("--control".into());
        args.push(self.control.clone().into_os_string());
        args.push("--idle-exit".into());
        args.push(self.idle_exit_secs.to_string().into());
        args
    }

    /// Serves until shutdown, idle exit, SIGTERM or SIGINT.
    pub async fn run(self) -> anyhow::Result<()> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let stop = async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        };
        serve_until(self.options(), stop).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    #[test]
    fn serve_args_round_trip() {
        let args = ServeArgs {
            listen: vec![
                "172.18.0.1:3128".parse().unwrap(),
                "[fd00::1]:3128".parse().unwrap(),
            ],
            control: "/run/handoff/egress.sock".into(),
            idle_exit_secs: 0,
        };
        let mut argv: Vec<OsString> = vec!["serve".into()];
        argv.extend(args.to_args());
        let parsed = Cli::try_parse_from(argv).unwrap().serve;
        assert_eq!(parsed, args);
        assert_eq!(parsed.options().idle_exit, None);
        let defaults = Cli::try_parse_from(["serve", "--control", "/x.sock"])
            .unwrap()
            .serve;
        assert_eq!(defaults.options().idle_exit, Some(Duration::from_secs(600)));
        assert!(defaults.listen.is_empty());
    }

    #[test]
    fn detached_child_leads_its_own_session_and_logs_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("egress.log");
        // `read` is a shell builtin, so /proc/self is the shell itself.
        let script = "read -r _ _ _ _ _ sid _ < /proc/self/stat; echo \"pid=$$ sid=$sid\"; \
                      echo to-stderr >&2; read -r line || echo stdin-empty; pwd";
        let pid =
            spawn_detached(Path::new("/bin/sh"), &["-c".into(), script.into()], &log).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let text = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.lines().count() >= 4 || std::time::Instant::now() > deadline {
                break text;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(text.contains(&format!("pid={pid} sid={pid}")), "{text}");
        assert!(text.contains("to-stderr"), "{text}");
        assert!(text.contains("stdin-empty"), "{text}");
        assert!(text.lines().any(|l| l == "/"), "{text}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&log).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
