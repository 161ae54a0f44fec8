//! `handoff doctor`: one line per check, each failing check with what to do.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use crate::config::Config;
use crate::engine::Engine;
use crate::sandbox::{AnySandbox, DockerSandbox, Sandbox, SandboxError};

enum Level {
    Ok,
    Warn,
    Fail,
}

struct Report {
    failed: bool,
}

impl Report {
    fn line(&mut self, level: Level, what: &str, fix: Option<String>) {
        let mark = match level {
            Level::Ok => "ok  ",
            Level::Warn => "warn",
            Level::Fail => {
                self.failed = true;
                "FAIL"
            }
        };
        println!("[{mark}] {}", super::terminal::escape(what));
        if let Some(fix) = fix {
            println!("       fix: {}", super::terminal::escape(&fix));
        }
    }
}

pub async fn run(cwd: &Path) -> Result<ExitCode> {
    let mut r = Report { failed: false };

    let workdir = match Engine::<AnySandbox>::find_repo(cwd) {
        Ok((workdir, _)) => {
            r.line(
                Level::Ok,
                &format!("git repository at {}", workdir.display()),
                None,
            );
            match git2::Repository::open(&workdir).map(|repo| repo.head().is_ok()) {
                Ok(true) => {}
                _ => r.line(
                    Level::Fail,
                    "the repository has no commits",
                    Some("commit something first: agents start from a commit".into()),
                ),
            }
            Some(workdir)
        }
        Err(e) => {
            r.line(
                Level::Fail,
                &e.to_string(),
                Some("cd into a git repository, or `git init`".into()),
            );
            None
        }
    };

    let config = match Config::load(workdir.as_deref()) {
        Ok(c) => {
            let sources: Vec<String> = c.sources.iter().map(|p| p.display().to_string()).collect();
            let from = if sources.is_empty() {
                "built-in defaults".to_string()
            } else {
                sources.join(", ")
            };
            r.line(
                Level::Ok,
                &format!(
                    "config valid ({from}); default agent `{}`, max_parallel {}",
                    c.default_agent, c.max_parallel
                ),
                None,
            );
            match &c.trust {
                crate::trust::TrustState::Untrusted { .. } if !c.ignored.is_empty() => r.line(
                    Level::Warn,
                    &format!(
                        "the repository's configuration is not trusted; ignored: {}",
                        c.ignored.join(", ")
                    ),
                    Some("review .handoff.toml, .handoff/ and the dev container, then `handoff trust`".into()),
                ),
                crate::trust::TrustState::Trusted { .. } => r.line(
                    Level::Ok,
                    "the repository's configuration is trusted as it is now",
                    None,
                ),
                _ => {}
            }
            for warning in c.warnings.iter().filter(|w| !w.contains("is not trusted")) {
                r.line(Level::Warn, warning, None);
            }
            c
        }
        Err(e) => {
            r.line(
                Level::Fail,
                &e.to_string(),
                Some("edit the file named above".into()),
            );
            Config::builtin()
        }
    };

    if let AnySandbox::Kube(lazy) = AnySandbox::for_engine(&config.engine) {
        return kubernetes(&mut r, &config, &lazy).await;
    }
    let docker = match DockerSandbox::connect_to(&config.engine).await {
        Ok(d) => d,
        Err(e) => {
            r.line(
                Level::Fail,
                &e.to_string(),
                Some("start the Docker engine".into()),
            );
            return Ok(exit(&r));
        }
    };
    match docker.version().await {
        Ok((version, api)) => r.line(
            Level::Ok,
            &format!("Docker {version} (API {api}) at {}", docker.endpoint()),
            None,
        ),
        Err(e) => r.line(Level::Fail, &e.to_string(), None),
    }

    for (name, profile) in &config.agents {
        let is_default = *name == config.default_agent;
        match docker.check_image(&profile.image).await {
            Ok(_) => r.line(
                Level::Ok,
                &format!("agent `{name}`: image {} present", profile.image),
                None,
            ),
            Err(SandboxError::ImageMissing { image, .. }) => r.line(
                if is_default { Level::Fail } else { Level::Warn },
                &format!("agent `{name}`: image {image} is not in the engine"),
                Some(if matches!(name.as_str(), "claude" | "codex" | "aider")
                    || config
                        .devcontainer
                        .as_ref()
                        .is_some_and(|d| d.profiles.contains_key(name))
                {
                    format!("`handoff image build {name}`, or set [agents.{name}] image = \"...\" in .handoff.toml")
                } else {
                    format!("`docker pull {image}` (or build it), or set [agents.{name}] image = \"...\" in .handoff.toml")
                }),
            ),
            Err(e) => r.line(Level::Fail, &e.to_string(), None),
        }
        if let Err(message) = profile.check_credentials(|n| std::env::var(n).ok()) {
            r.line(
                if is_default { Level::Fail } else { Level::Warn },
                &format!("agent `{name}`: no credentials in this environment"),
                Some(message),
            );
        }
        policy(&mut r, &config, profile);
    }
    match docker.egress_network().await {
        Ok(net) => r.line(
            Level::Ok,
            &format!(
                "egress: network {} (internal, no route out); the proxy listens on {} for agents on network \"egress\"",
                net.name, net.gateway
            ),
            None,
        ),
        Err(e) => r.line(
            Level::Warn,
            &format!("egress: the internal network cannot be made: {e}"),
            Some("agents on network \"egress\" will not start; check the Docker engine".into()),
        ),
    }
    Ok(exit(&r))
}

/// The cluster `[engine] kind = "kubernetes"` names, then each agent's credentials
/// and policy.
async fn kubernetes(
    r: &mut Report,
    config: &Config,
    lazy: &crate::sandbox::any::LazyKube,
) -> Result<ExitCode> {
    use crate::sandbox::kube::check::{check_cluster, Verdict};
    let cluster = match lazy.get().await {
        Ok(k) => k,
        Err(e) => {
            r.line(
                Level::Fail,
                &e.to_string(),
                Some("set `kubeconfig` and `context` in [engine], or KUBECONFIG".into()),
            );
            return Ok(exit(r));
        }
    };
    let mut images: Vec<String> = config.agents.values().map(|p| p.image.clone()).collect();
    // Handoff's own containers of every pod run the tools image.
    images.push(cluster.tools_image().to_string());
    images.sort();
    images.dedup();
    for f in check_cluster(cluster, &images).await {
        let level = match f.verdict {
            Verdict::Ok => Level::Ok,
            Verdict::Warn => Level::Warn,
            Verdict::Fail => Level::Fail,
        };
        r.line(level, &f.what, f.fix);
    }
    for (name, profile) in &config.agents {
        let is_default = *name == config.default_agent;
        if let Err(message) = profile.check_credentials(|n| std::env::var(n).ok()) {
            r.line(
                if is_default { Level::Fail } else { Level::Warn },
                &format!("agent `{name}`: no credentials in this environment"),
                Some(message),
            );
        }
        if !matches!(profile.network, crate::agents::Network::None) {
            r.line(
                if is_default { Level::Fail } else { Level::Warn },
                &format!(
                    "agent `{name}`: network \"{}\" is refused on Kubernetes (its tasks will not start)",
                    profile.network
                ),
                Some("use network \"none\": the cluster has no egress proxy, and NetworkPolicy needs a CNI that enforces it".into()),
            );
            continue;
        }
        policy(r, config, profile);
    }
    Ok(exit(r))
}

/// The sandbox policy a profile's tasks run under, in one line.
fn policy(r: &mut Report, config: &Config, profile: &crate::agents::AgentProfile) {
    use crate::agents::{profile::duration_text, Network, OutputFormat};
    let name = &profile.name;
    let network = match profile.network {
        Network::None => "no network".to_string(),
        Network::Egress => {
            let allow: Vec<String> = profile.allow.iter().map(|r| r.to_string()).collect();
            let mut text = if allow.is_empty() {
                "egress proxy, nothing allowed".to_string()
            } else {
                format!("egress proxy, allowed: {}", allow.join(", "))
            };
            if profile.output_format() == Some(OutputFormat::ClaudeStreamJson) {
                text.push_str("; the API key is added by the proxy and never enters the container");
            }
            text
        }
        Network::Bridge => "Docker's bridge network, unfiltered".to_string(),
        Network::Host if config.allow_host_network => {
            "the host's network (allowed by your config)".to_string()
        }
        Network::Host => {
            r.line(
                Level::Warn,
                &format!("agent `{name}`: network \"host\" is refused (its tasks will not start)"),
                Some("use network \"egress\" with an `allow` list, or set `allow_host_network = true` in your own config".into()),
            );
            return;
        }
    };
    let l = profile.limits;
    r.line(
        Level::Ok,
        &format!(
            "agent `{name}`: {network}; limits: {} per turn, {} MiB on disk, {} MiB brought home",
            duration_text(l.timeout_secs),
            l.disk_bytes >> 20,
            l.import_bytes >> 20
        ),
        None,
    );
}

fn exit(r: &Report) -> ExitCode {
    if r.failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
