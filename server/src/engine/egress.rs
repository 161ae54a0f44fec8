//! A task's way out: the egress proxy, its grant and the container's environment.
//!
//! Agents on network `egress` sit on an internal network of the engine whose only
//! reachable address is the gateway, where Handoff's proxy ([`crate::egress`])
//! listens. The proxy runs detached, one per engine and user, started by whichever
//! front-end needs it first. Each turn registers a grant: the profile's `allow` list
//! and, for the built-in Claude Code profile, a gateway route that adds the API key —
//! so the key itself never enters the container. At finalize the grant is withdrawn
//! and what the proxy refused is recorded on the task.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::agents::{AgentProfile, OutputFormat};
use crate::egress::client::{Client, ClientError};
use crate::egress::{self, Blocked, Grant, Route, Secret};
use crate::sandbox::{EgressNetwork, Sandbox};

use super::task::{RunPhase, Task};
use super::{Engine, EngineError};

/// What the agent's CLI sends instead of the real key; the proxy replaces it.
pub const PLACEHOLDER_CREDENTIAL: &str = "handoff-proxy-adds-the-real-credential";

/// What a turn on network `egress` gets.
pub(super) struct EgressPlan {
    /// Variables for the container (proxy URLs, gateway base URLs, placeholders).
    pub env: Vec<(String, String)>,
    /// Variables of the caller that must not reach the container: the proxy adds them.
    pub withheld: Vec<String>,
}

/// The proxy's folder: its control socket and log, per user.
fn state_dir() -> PathBuf {
    crate::config::state_dir().join("egress")
}

impl<S: Sandbox> Engine<S> {
    /// The grant key of the task's current turn, as the proxy knows it.
    pub(super) fn grant_key(&self, task: &Task) -> String {
        self.phase_grant_key(task, task.phase.unwrap_or(RunPhase::Agent))
    }

    fn phase_grant_key(&self, task: &Task, phase: RunPhase) -> String {
        let suffix = match phase {
            RunPhase::Setup => "/setup",
            RunPhase::Agent => "",
        };
        format!(
            "{}/{}/{}{suffix}",
            self.repo_key(),
            task.id,
            task.turn_number()
        )
    }

    /// Makes sure the proxy runs for `network`, registers the turn's grant and returns
    /// what the container needs.
    pub(super) async fn open_egress(
        &self,
        task: &Task,
        profile: &AgentProfile,
        network: &EgressNetwork,
        phase: RunPhase,
    ) -> Result<EgressPlan, EngineError> {
        let (mut client, listen) = self.proxy_for(network).await?;
        let token = egress::new_token()
            .map_err(|e| EngineError::Internal(format!("no random token: {e}")))?;
        let mut grant = Grant {
            task_key: self.phase_grant_key(task, phase),
            token,
            allow: profile.allow.clone(),
            routes: vec![],
        };
        let mut env = Vec::new();
        let mut withheld = Vec::new();
        // The setup gets the allow list but never the model's credential.
        if phase == RunPhase::Agent
            && profile.output_format() == Some(OutputFormat::ClaudeStreamJson)
        {
            if let Some((route, name)) = anthropic_route(profile) {
                grant.routes.push(route);
                env.push((
                    "ANTHROPIC_BASE_URL".to_string(),
                    grant.route_url(listen, "anthropic"),
                ));
                env.push((name.to_string(), PLACEHOLDER_CREDENTIAL.to_string()));
                withheld.extend(
                    [
                        "ANTHROPIC_API_KEY",
                        "CLAUDE_CODE_OAUTH_TOKEN",
                        "ANTHROPIC_BASE_URL",
                    ]
                    .map(String::from),
                );
            }
        }
        let proxy = grant.proxy_url(listen);
        for name in ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"] {
            env.push((name.to_string(), proxy.clone()));
        }
        let gateway = listen.ip().to_string();
        env.push(("NO_PROXY".to_string(), gateway.clone()));
        env.push(("no_proxy".to_string(), gateway));
        client.register(&grant).await.map_err(proxy_error)?;
        Ok(EgressPlan { env, withheld })
    }

    /// Withdraws the turn's grant; returns what the proxy refused it. `None` when the
    /// proxy does not know the turn (it was restarted meanwhile).
    pub(super) async fn close_egress(&self, task: &Task) -> Option<Vec<Blocked>> {
        let network = self.sandbox.egress_network().await.ok()?;
        let mut client = Client::connect(&self.proxy_socket(&network)).await.ok()?;
        client.unregister(&self.grant_key(task)).await.ok()
    }

    fn proxy_socket(&self, network: &EgressNetwork) -> PathBuf {
        let key = git2::Oid::hash_object(
            git2::ObjectType::Blob,
            format!("{}|{}", self.sandbox.endpoint(), network.gateway).as_bytes(),
        )
        .map(|o| o.to_string()[..16].to_string())
        .unwrap_or_else(|_| "default".into());
        state_dir().join(format!("proxy-{key}.sock"))
    }

    /// A client of the proxy serving `network`, started when none runs, and the address
    /// it listens on there.
    async fn proxy_for(
        &self,
        network: &EgressNetwork,
    ) -> Result<(Client, SocketAddr), EngineError> {
        let socket = self.proxy_socket(network);
        let dir = state_dir();
        std::fs::create_dir_all(&dir)
            .map_err(|e| EngineError::Invalid(format!("cannot create {}: {e}", dir.display())))?;
        let mut client = match Client::connect(&socket).await {
            Ok(c) => c,
            Err(ClientError::NotRunning { .. }) => {
                let exe = std::env::current_exe().map_err(|e| {
                    EngineError::Internal(format!("cannot find the handoff binary: {e}"))
                })?;
                let args = egress::ServeArgs {
                    listen: vec![SocketAddr::new(network.gateway, 0)],
                    control: socket.clone(),
                    idle_exit_secs: 600,
                };
                let mut argv = vec!["egress".into(), "serve".into()];
                argv.extend(args.to_args());
                egress::spawn_detached(&exe, &argv, &socket.with_extension("log")).map_err(
                    |e| EngineError::Invalid(format!("cannot start the egress proxy: {e}")),
                )?;
                connect_soon(&socket).await?
            }
            Err(e) => return Err(proxy_error(e)),
        };
        let pong = client.ping().await.map_err(proxy_error)?;
        let listen = match pong.listen.iter().find(|a| a.ip() == network.gateway) {
            Some(a) => *a,
            None => client
                .listen(SocketAddr::new(network.gateway, 0))
                .await
                .map_err(proxy_error)?,
        };
        Ok((client, listen))
    }
}

/// Waits up to 5 s for a proxy just started to answer.
async fn connect_soon(socket: &std::path::Path) -> Result<Client, EngineError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match Client::connect(socket).await {
            Ok(c) => return Ok(c),
            Err(e) if tokio::time::Instant::now() > deadline => {
                return Err(EngineError::Invalid(format!(
                    "the egress proxy did not start: {e} (its log: {})",
                    socket.with_extension("log").display()
                )))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

fn proxy_error(e: ClientError) -> EngineError {
    EngineError::Invalid(format!("the egress proxy: {e}"))
}

/// The route that adds Claude Code's credential, when the caller has one: the real
/// key or OAuth token goes to the proxy, a placeholder to the container. Returns the
/// route and the variable the container gets the placeholder in.
fn anthropic_route(profile: &AgentProfile) -> Option<(Route, &'static str)> {
    let passes = |name: &str| profile.env.iter().any(|n| n == name);
    let value = |name: &str| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty() && passes(name))
    };
    let (inject, name) = if let Some(key) = value("ANTHROPIC_API_KEY") {
        (
            ("x-api-key".to_string(), Secret::new(key)),
            "ANTHROPIC_API_KEY",
        )
    } else if let Some(token) = value("CLAUDE_CODE_OAUTH_TOKEN") {
        (
            (
                "authorization".to_string(),
                Secret::new(format!("Bearer {token}")),
            ),
            "CLAUDE_CODE_OAUTH_TOKEN",
        )
    } else {
        return None;
    };
    let upstream =
        value("ANTHROPIC_BASE_URL").unwrap_or_else(|| "https://api.anthropic.com".into());
    let upstream = url::Url::parse(&upstream).ok()?;
    Some((
        Route {
            name: "anthropic".into(),
            upstream,
            inject: vec![inject],
            strip: vec!["x-api-key".into(), "authorization".into()],
        },
        name,
    ))
}
