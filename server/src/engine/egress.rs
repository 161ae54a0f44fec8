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

use crate::agents::credentials::{self, CredentialPlan};
use crate::agents::AgentProfile;
use crate::egress::client::{Client, ClientError};
use crate::egress::{self, Blocked, Grant, Route, Secret};
use crate::sandbox::{EgressNetwork, Sandbox};

use super::task::{RunPhase, Task};
use super::{Engine, EngineError};

/// What a turn on network `egress` gets.
pub(super) struct EgressPlan {
    /// Variables for the container (proxy URLs, gateway base URLs, placeholders).
    pub env: Vec<(String, String)>,
    /// Arguments for the agent's CLI, with the gateway's addresses in them.
    pub args: Vec<String>,
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
        creds: &CredentialPlan,
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
        let mut args = Vec::new();
        for extra in &creds.allow {
            if let Ok(rule) = extra.parse() {
                grant.allow.push(rule);
            }
        }
        // The setup gets the allow list but never the model's credential.
        if phase == RunPhase::Agent {
            for route in &creds.routes {
                let upstream = url::Url::parse(&route.upstream).map_err(|e| {
                    EngineError::Invalid(format!("the model endpoint `{}`: {e}", route.upstream))
                })?;
                grant.routes.push(Route {
                    name: route.name.to_string(),
                    upstream,
                    inject: route
                        .inject
                        .iter()
                        .map(|(h, v)| (h.clone(), Secret::new(v.clone())))
                        .collect(),
                    strip: route.strip.clone(),
                });
            }
            let resolve = |text: &str| {
                let mut text = text.to_string();
                for route in &creds.routes {
                    text = text.replace(
                        &credentials::route_marker(route.name),
                        &grant.route_url(listen, route.name),
                    );
                }
                text
            };
            env.extend(creds.env.iter().map(|(k, v)| (k.clone(), resolve(v))));
            args.extend(creds.args.iter().map(|a| resolve(a)));
        }
        let proxy = grant.proxy_url(listen);
        for name in ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"] {
            env.push((name.to_string(), proxy.clone()));
        }
        let gateway = listen.ip().to_string();
        env.push(("NO_PROXY".to_string(), gateway.clone()));
        env.push(("no_proxy".to_string(), gateway));
        client.register(&grant).await.map_err(proxy_error)?;
        Ok(EgressPlan { env, args })
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
