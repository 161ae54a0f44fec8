//! Which Docker-API engine Handoff talks to, and how: the `[engine]` table of a
//! configuration file over the standard `DOCKER_HOST`, `DOCKER_TLS_VERIFY` and
//! `DOCKER_CERT_PATH` variables, resolved to an [`Endpoint`] (a unix socket, TCP with
//! or without TLS, or ssh) and a workspace mode (an overlay of host folders, which
//! only an engine on this machine can mount, or a shipped one).
//!
//! Pure: reads no file and no variable itself (the caller passes the environment).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The default socket of the local engine.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// `[engine]` as written in a configuration file; every field optional, so that a
/// later file overrides single fields of an earlier one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EngineSettings {
    pub kind: Option<EngineKind>,
    /// `unix:///path`, `tcp://host:port` or `ssh://[user@]host[:port]`.
    pub host: Option<String>,
    pub tls_ca: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// A folder with `ca.pem`, `cert.pem` and `key.pem` (as `DOCKER_CERT_PATH`).
    pub cert_dir: Option<PathBuf>,
    /// An ssh configuration file for `ssh://` hosts (`ssh -F`).
    pub ssh_config: Option<PathBuf>,
    /// A private key for `ssh://` hosts (`ssh -i`).
    pub ssh_key: Option<PathBuf>,
    pub workspace: Option<WorkspaceMode>,
    /// `kind = "kubernetes"`: a kubeconfig file (unset: `KUBECONFIG`, else
    /// `~/.kube/config`).
    pub kubeconfig: Option<PathBuf>,
    /// `kind = "kubernetes"`: a context of the kubeconfig (unset: its current one).
    pub context: Option<String>,
    /// `kind = "kubernetes"`: where Jobs go (unset: the context's, else `default`).
    pub namespace: Option<String>,
    /// `kind = "kubernetes"`: the image of Handoff's own containers in a turn's pod
    /// (a static busybox at `/bin/busybox`); unset: [`super::kube::DEFAULT_TOOLS_IMAGE`].
    pub tools_image: Option<String>,
    /// A Docker engine with shipped workspaces: how long a base image no container
    /// uses is kept for later tasks on its commit (`"1h"`, `"0"`); unset:
    /// [`DEFAULT_KEEP_BASE_IMAGES`].
    pub keep_base_images: Option<String>,
}

/// A duration as the agents' `timeout` takes it, or zero (`"0"`, `"0s"`, …).
fn parse_keep(text: &str) -> Result<u64, String> {
    let number = text
        .trim()
        .trim_end_matches(|c: char| c.is_ascii_alphabetic());
    if number.trim().parse::<f64>() == Ok(0.0) {
        return Ok(0);
    }
    crate::agents::profile::parse_duration(text)
}

/// How long an unused base image of a shipped workspace stays on a Docker engine when
/// `keep_base_images` is not set.
pub const DEFAULT_KEEP_BASE_IMAGES: std::time::Duration = std::time::Duration::from_secs(3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    Docker,
    Kubernetes,
}

/// How the agent's workspace reaches its container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum WorkspaceMode {
    /// An overlay on an engine of this machine, shipped otherwise.
    #[default]
    Auto,
    /// An overlay volume of host folders (the local engine only).
    Overlay,
    /// Copied in and out through the Engine API (any engine).
    Shipped,
}

impl EngineSettings {
    /// These settings over `lower`: every field set here wins.
    pub fn over(self, lower: EngineSettings) -> EngineSettings {
        EngineSettings {
            kind: self.kind.or(lower.kind),
            host: self.host.or(lower.host),
            tls_ca: self.tls_ca.or(lower.tls_ca),
            tls_cert: self.tls_cert.or(lower.tls_cert),
            tls_key: self.tls_key.or(lower.tls_key),
            cert_dir: self.cert_dir.or(lower.cert_dir),
            ssh_config: self.ssh_config.or(lower.ssh_config),
            ssh_key: self.ssh_key.or(lower.ssh_key),
            workspace: self.workspace.or(lower.workspace),
            kubeconfig: self.kubeconfig.or(lower.kubeconfig),
            context: self.context.or(lower.context),
            namespace: self.namespace.or(lower.namespace),
            tools_image: self.tools_image.or(lower.tools_image),
            keep_base_images: self.keep_base_images.or(lower.keep_base_images),
        }
    }

    /// How long an unused base image is kept (`keep_base_images`; a value
    /// [`Self::check`] refuses counts as unset).
    pub fn keep_base_images(&self) -> std::time::Duration {
        self.keep_base_images
            .as_deref()
            .and_then(|text| parse_keep(text).ok())
            .map(std::time::Duration::from_secs)
            .unwrap_or(DEFAULT_KEEP_BASE_IMAGES)
    }

    /// What is wrong with these settings on their own, in words for the user.
    pub fn check(&self) -> Result<(), String> {
        if let Some(text) = &self.keep_base_images {
            parse_keep(text).map_err(|e| format!("keep_base_images: {e}"))?;
        }
        if self.kind == Some(EngineKind::Kubernetes) {
            let docker_only = [
                ("host", self.host.is_some()),
                ("tls_ca", self.tls_ca.is_some()),
                ("tls_cert", self.tls_cert.is_some()),
                ("tls_key", self.tls_key.is_some()),
                ("cert_dir", self.cert_dir.is_some()),
                ("ssh_config", self.ssh_config.is_some()),
                ("ssh_key", self.ssh_key.is_some()),
                ("keep_base_images", self.keep_base_images.is_some()),
            ];
            if let Some((key, _)) = docker_only.iter().find(|(_, set)| *set) {
                return Err(format!(
                    "`{key}` is for a Docker engine; with kind = \"kubernetes\" say where \
                     the cluster is with `kubeconfig`, `context` and `namespace`"
                ));
            }
            if self.workspace == Some(WorkspaceMode::Overlay) {
                return Err(
                    "workspace = \"overlay\" needs the local Docker engine; a cluster's \
                     workspaces are always shipped"
                        .into(),
                );
            }
            let target = super::kube::KubeTarget {
                namespace: self.namespace.clone(),
                tools_image: self.tools_image.clone(),
                ..Default::default()
            };
            return target.check();
        }
        if self.kubeconfig.is_some()
            || self.context.is_some()
            || self.namespace.is_some()
            || self.tools_image.is_some()
        {
            return Err(
                "`kubeconfig`, `context`, `namespace` and `tools_image` are for kind = \"kubernetes\""
                    .into(),
            );
        }
        let files = [&self.tls_ca, &self.tls_cert, &self.tls_key];
        let given = files.iter().filter(|f| f.is_some()).count();
        if given != 0 && given != 3 {
            return Err(
                "tls_ca, tls_cert and tls_key go together: give all three, or \
                        cert_dir with ca.pem, cert.pem and key.pem"
                    .into(),
            );
        }
        if let Some(host) = &self.host {
            parse_host(host)?;
        }
        Ok(())
    }
}

/// Certificate files for TLS to the engine (client certificate and key, and the CA
/// that signed the engine's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// An ssh destination, parsed (bollard's own ssh transport takes no port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    pub config: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// Where the engine is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix(PathBuf),
    Tcp { addr: String, tls: Option<TlsFiles> },
    Ssh(SshTarget),
}

/// The resolved engine: where, shown how, and with which workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineTarget {
    pub endpoint: Endpoint,
    /// For messages: the host as the user wrote it.
    pub name: String,
    pub workspace: WorkspaceMode,
}

impl EngineTarget {
    /// Whether the engine may share this machine's disk (a unix socket).
    pub fn is_local(&self) -> bool {
        matches!(self.endpoint, Endpoint::Unix(_))
    }
}

enum Scheme<'a> {
    Unix(&'a str),
    Tcp(&'a str),
    Ssh(&'a str),
}

fn parse_host(host: &str) -> Result<Scheme<'_>, String> {
    if let Some(path) = host.strip_prefix("unix://") {
        if path.is_empty() {
            return Err(format!("host `{host}` names no socket"));
        }
        return Ok(Scheme::Unix(path));
    }
    if let Some(addr) = host.strip_prefix("tcp://") {
        if addr.is_empty() || addr.contains('/') {
            return Err(format!("host `{host}` is not tcp://HOST:PORT"));
        }
        return Ok(Scheme::Tcp(addr));
    }
    if let Some(dest) = host.strip_prefix("ssh://") {
        if dest.is_empty() || dest.contains('/') {
            return Err(format!("host `{host}` is not ssh://[USER@]HOST[:PORT]"));
        }
        return Ok(Scheme::Ssh(dest));
    }
    Err(format!(
        "host `{host}` is not unix:///PATH, tcp://HOST:PORT or ssh://[USER@]HOST[:PORT]"
    ))
}

fn parse_ssh(dest: &str) -> Result<(Option<String>, String, Option<u16>), String> {
    let (user, rest) = match dest.rsplit_once('@') {
        Some((u, r)) => (Some(u.to_string()), r),
        None => (None, dest),
    };
    // `[::1]:22`, `host:22`, `host`.
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("ssh host `{dest}` has an unclosed ["))?;
        (h.to_string(), after.strip_prefix(':'))
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (rest.to_string(), None),
        }
    };
    let port = port
        .map(|p| {
            p.parse::<u16>()
                .map_err(|_| format!("ssh host `{dest}`: `{p}` is not a port"))
        })
        .transpose()?;
    if host.is_empty()
        || host.starts_with('-')
        || user
            .as_deref()
            .is_some_and(|u| u.starts_with('-') || u.is_empty())
    {
        return Err(format!("ssh host `{dest}` is not [USER@]HOST[:PORT]"));
    }
    Ok((user, host, port))
}

/// Resolves `settings` (the configuration's `[engine]`) with the environment `env`
/// (`DOCKER_HOST`, `DOCKER_TLS_VERIFY`, `DOCKER_CERT_PATH`, `HOME`) for what the
/// configuration leaves unsaid.
pub fn resolve(
    settings: &EngineSettings,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<EngineTarget, String> {
    settings.check()?;
    let var = |name: &str| env(name).filter(|v| !v.is_empty());
    let host = settings
        .host
        .clone()
        .or_else(|| var("DOCKER_HOST"))
        .unwrap_or_else(|| format!("unix://{DEFAULT_SOCKET}"));
    let tls = match (
        &settings.tls_ca,
        &settings.tls_cert,
        &settings.tls_key,
        &settings.cert_dir,
    ) {
        (Some(ca), Some(cert), Some(key), _) => Some(TlsFiles {
            ca: ca.clone(),
            cert: cert.clone(),
            key: key.clone(),
        }),
        (_, _, _, Some(dir)) => Some(cert_dir_files(dir.clone())),
        _ => {
            let verify = var("DOCKER_TLS_VERIFY").is_some_and(|v| v != "0");
            verify.then(|| {
                let dir = var("DOCKER_CERT_PATH")
                    .map(PathBuf::from)
                    .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".docker")))
                    .unwrap_or_else(|| PathBuf::from(".docker"));
                cert_dir_files(dir)
            })
        }
    };
    let endpoint = match parse_host(&host)? {
        Scheme::Unix(path) => Endpoint::Unix(PathBuf::from(path)),
        Scheme::Tcp(addr) => Endpoint::Tcp {
            addr: addr.to_string(),
            tls,
        },
        Scheme::Ssh(dest) => {
            let (user, h, port) = parse_ssh(dest)?;
            Endpoint::Ssh(SshTarget {
                user,
                host: h,
                port,
                config: settings.ssh_config.clone(),
                key: settings.ssh_key.clone(),
            })
        }
    };
    let workspace = settings.workspace.unwrap_or_default();
    if workspace == WorkspaceMode::Overlay && !matches!(endpoint, Endpoint::Unix(_)) {
        return Err(format!(
            "workspace = \"overlay\" needs an engine on this machine, and {host} is not: \
             remove it (a remote engine gets a shipped workspace)"
        ));
    }
    Ok(EngineTarget {
        endpoint,
        name: host,
        workspace,
    })
}

fn cert_dir_files(dir: PathBuf) -> TlsFiles {
    TlsFiles {
        ca: dir.join("ca.pem"),
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn unused_base_images_are_kept_an_hour_unless_told_and_bad_values_are_refused() {
        let keep = |v: &str| EngineSettings {
            keep_base_images: Some(v.into()),
            ..Default::default()
        };
        assert_eq!(
            EngineSettings::default().keep_base_images(),
            DEFAULT_KEEP_BASE_IMAGES
        );
        assert_eq!(keep("30m").keep_base_images().as_secs(), 1800);
        assert_eq!(keep("0").keep_base_images().as_secs(), 0);
        assert_eq!(keep("0s").keep_base_images().as_secs(), 0);
        assert!(keep("2d").check().is_ok());
        let bad = keep("soon").check().unwrap_err();
        assert!(
            bad.contains("keep_base_images") && bad.contains("soon"),
            "{bad}"
        );
        let kube = EngineSettings {
            kind: Some(EngineKind::Kubernetes),
            ..keep("1h")
        };
        assert!(kube.check().unwrap_err().contains("keep_base_images"));
    }

    #[test]
    fn the_configuration_wins_over_the_environment_which_wins_over_the_default() {
        let none = EngineSettings::default();
        let t = resolve(&none, &env(&[])).unwrap();
        assert_eq!(t.endpoint, Endpoint::Unix(DEFAULT_SOCKET.into()));
        assert!(t.is_local());
        let t = resolve(
            &none,
            &env(&[
                ("DOCKER_HOST", "tcp://10.0.0.2:2376"),
                ("DOCKER_TLS_VERIFY", "1"),
                ("DOCKER_CERT_PATH", "/certs"),
            ]),
        )
        .unwrap();
        assert_eq!(
            t.endpoint,
            Endpoint::Tcp {
                addr: "10.0.0.2:2376".into(),
                tls: Some(TlsFiles {
                    ca: "/certs/ca.pem".into(),
                    cert: "/certs/cert.pem".into(),
                    key: "/certs/key.pem".into()
                })
            }
        );
        assert!(!t.is_local());
        let configured = EngineSettings {
            host: Some("ssh://deploy@build-box:2222".into()),
            ..Default::default()
        };
        let t = resolve(&configured, &env(&[("DOCKER_HOST", "tcp://x:1")])).unwrap();
        assert_eq!(
            t.endpoint,
            Endpoint::Ssh(SshTarget {
                user: Some("deploy".into()),
                host: "build-box".into(),
                port: Some(2222),
                config: None,
                key: None
            })
        );
        assert_eq!(t.name, "ssh://deploy@build-box:2222");
    }

    #[test]
    fn bad_settings_say_what_to_write() {
        let bad = |s: EngineSettings| resolve(&s, &env(&[])).unwrap_err();
        assert!(bad(EngineSettings {
            host: Some("http://x".into()),
            ..Default::default()
        })
        .contains("tcp://HOST:PORT"));
        assert!(bad(EngineSettings {
            tls_ca: Some("ca.pem".into()),
            ..Default::default()
        })
        .contains("go together"));
        assert!(bad(EngineSettings {
            host: Some("tcp://10.0.0.2:2376".into()),
            workspace: Some(WorkspaceMode::Overlay),
            ..Default::default()
        })
        .contains("needs an engine on this machine"));
        let checked = |s: EngineSettings| s.check();
        assert!(checked(EngineSettings {
            kind: Some(EngineKind::Kubernetes),
            ..Default::default()
        })
        .is_ok());
        assert!(checked(EngineSettings {
            kind: Some(EngineKind::Kubernetes),
            host: Some("tcp://10.0.0.2:2376".into()),
            ..Default::default()
        })
        .unwrap_err()
        .contains("`host` is for a Docker engine"));
        assert!(checked(EngineSettings {
            kind: Some(EngineKind::Kubernetes),
            namespace: Some("Agents".into()),
            ..Default::default()
        })
        .unwrap_err()
        .contains("not a Kubernetes namespace"));
        assert!(checked(EngineSettings {
            namespace: Some("agents".into()),
            ..Default::default()
        })
        .unwrap_err()
        .contains("for kind = \"kubernetes\""));
        assert!(bad(EngineSettings {
            host: Some("ssh://-oProxyCommand=x".into()),
            ..Default::default()
        })
        .contains("not [USER@]HOST"));
    }
}
