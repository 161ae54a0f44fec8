//! The local Docker engine, through bollard.
//!
//! Containers are created detached and never auto-removed: their exit status and logs
//! must survive the front-end that started them, until a front-end finalizes the task.

use std::collections::HashMap;
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, InspectContainerOptions, ListContainersOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;

use super::{
    EgressNetwork, LogStream, Sandbox, SandboxError, SandboxNetwork, SandboxSpec, SandboxStatus,
};
use crate::agents::{CACHE_DIR_IN_SANDBOX, OUT_DIR_IN_SANDBOX, PROMPT_FILE_IN_SANDBOX};

/// The agent's HOME inside the container: a private folder of the task's, kept between
/// turns (the agent's sessions live there).
pub const HOME_IN_SANDBOX: &str = "/home/agent";

/// The internal network of agents whose way out is the egress proxy.
pub const EGRESS_NETWORK: &str = "handoff-egress";

#[derive(Clone)]
pub struct DockerSandbox {
    /// `None` when the endpoint could not even be opened (no socket file); every call
    /// then fails with [`SandboxError::Unreachable`].
    docker: Option<Docker>,
    endpoint: String,
    /// Why `docker` is `None`.
    unreachable: String,
}

/// The endpoint bollard's local defaults use, for messages.
fn local_endpoint() -> String {
    match std::env::var("DOCKER_HOST") {
        Ok(h) if !h.is_empty() => h,
        _ => "unix:///var/run/docker.sock".to_string(),
    }
}

impl Default for DockerSandbox {
    fn default() -> Self {
        DockerSandbox::new()
    }
}

impl DockerSandbox {
    /// A client for the engine named by DOCKER_HOST (or the default socket). Does no
    /// I/O: an engine that is down shows up as [`SandboxError::Unreachable`] on first
    /// use, so read-only front-end commands still work without Docker.
    pub fn new() -> DockerSandbox {
        let endpoint = local_endpoint();
        match Docker::connect_with_defaults() {
            Ok(docker) => DockerSandbox {
                docker: Some(docker.with_timeout(Duration::from_secs(600))),
                endpoint,
                unreachable: String::new(),
            },
            Err(e) => DockerSandbox {
                docker: None,
                endpoint,
                unreachable: e.to_string(),
            },
        }
    }

    /// Connects and negotiates the API version, so an older engine (20.10 speaks API
    /// 1.41) is addressed in its own version. Fails when the engine does not answer.
    pub async fn connect() -> Result<DockerSandbox, SandboxError> {
        let sandbox = DockerSandbox::new();
        let client = sandbox.client()?.clone();
        let unreachable = |message: String| SandboxError::Unreachable {
            endpoint: sandbox.endpoint.clone(),
            message,
        };
        let docker = tokio::time::timeout(Duration::from_secs(10), client.negotiate_version())
            .await
            .map_err(|_| unreachable("no answer within 10 s".into()))?
            .map_err(|e| unreachable(e.to_string()))?;
        Ok(DockerSandbox {
            docker: Some(docker),
            ..sandbox
        })
    }

    pub fn client(&self) -> Result<&Docker, SandboxError> {
        self.docker
            .as_ref()
            .ok_or_else(|| SandboxError::Unreachable {
                endpoint: self.endpoint.clone(),
                message: self.unreachable.clone(),
            })
    }

    /// Engine version and API version, for `handoff doctor`.
    pub async fn version(&self) -> Result<(String, String), SandboxError> {
        let v = self
            .client()?
            .version()
            .await
            .map_err(|e| self.engine_err(e))?;
        Ok((
            v.version.unwrap_or_default(),
            v.api_version.unwrap_or_default(),
        ))
    }

    fn engine_err(&self, e: BollardError) -> SandboxError {
        match e {
            BollardError::HyperLegacyError { .. } | BollardError::SocketNotFoundError(_) => {
                SandboxError::Unreachable {
                    endpoint: self.endpoint.clone(),
                    message: e.to_string(),
                }
            }
            other => SandboxError::Engine(other.to_string()),
        }
    }

    fn create_body(spec: &SandboxSpec) -> ContainerCreateBody {
        let bind = |source: &std::path::Path, target: &str, read_only: bool| Mount {
            typ: Some(MountType::BIND),
            source: Some(source.display().to_string()),
            target: Some(target.to_string()),
            read_only: Some(read_only),
            ..Default::default()
        };
        let workspace = Mount {
            typ: Some(MountType::VOLUME),
            source: Some(spec.name.clone()),
            target: Some("/workspace".to_string()),
            read_only: Some(false),
            volume_options: Some(bollard::models::MountVolumeOptions {
                no_copy: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut mounts = vec![
            workspace,
            bind(&spec.prompt_file, PROMPT_FILE_IN_SANDBOX, true),
            bind(&spec.home, HOME_IN_SANDBOX, false),
            bind(&spec.out_dir, OUT_DIR_IN_SANDBOX, false),
        ];
        if let Some(cache) = &spec.cache_dir {
            mounts.push(bind(cache, CACHE_DIR_IN_SANDBOX, spec.cache_read_only));
        }
        let host = HostConfig {
            mounts: Some(mounts),
            tmpfs: Some(HashMap::from([(
                "/tmp".to_string(),
                "rw,exec,size=2g,mode=1777".to_string(),
            )])),
            cap_drop: Some(vec!["ALL".into()]),
            security_opt: Some(vec!["no-new-privileges".into()]),
            memory: spec.memory_bytes,
            // Equal to memory: no swap, so an out-of-memory agent is killed, not slowed.
            memory_swap: spec.memory_bytes,
            nano_cpus: spec.cpus.map(|c| (c * 1e9) as i64),
            pids_limit: spec.pids,
            network_mode: Some(match &spec.network {
                SandboxNetwork::None => "none".to_string(),
                SandboxNetwork::Egress(net) => net.name.clone(),
                SandboxNetwork::Bridge => "bridge".to_string(),
                SandboxNetwork::Host => "host".to_string(),
            }),
            log_config: Some(bollard::models::HostConfigLogConfig {
                typ: Some("json-file".into()),
                // What the engine keeps of a flood of output: the last 2 × 32 MiB.
                config: Some(HashMap::from([
                    ("max-size".to_string(), "32m".to_string()),
                    ("max-file".to_string(), "2".to_string()),
                ])),
            }),
            auto_remove: Some(false),
            init: Some(false),
            ..Default::default()
        };
        let mut env: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        env.push(format!("HOME={HOME_IN_SANDBOX}"));
        ContainerCreateBody {
            image: Some(spec.image.clone()),
            cmd: Some(spec.argv.clone()),
            // An image's entrypoint would wrap our argv in something we did not ask for.
            entrypoint: Some(vec![]),
            env: Some(env),
            working_dir: Some("/workspace".into()),
            user: Some(format!("{}:{}", spec.uid, spec.gid)),
            labels: Some(spec.labels.clone().into_iter().collect()),
            host_config: Some(host),
            tty: Some(false),
            ..Default::default()
        }
    }
}

fn is_status(e: &BollardError, code: u16) -> bool {
    matches!(e, BollardError::DockerResponseServerError { status_code, .. } if *status_code == code)
}

impl Sandbox for DockerSandbox {
    fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    async fn check_image(&self, image: &str) -> Result<(), SandboxError> {
        match self.client()?.inspect_image(image).await {
            Ok(_) => Ok(()),
            Err(e) if is_status(&e, 404) => Err(SandboxError::ImageMissing {
                image: image.to_string(),
                endpoint: self.endpoint.clone(),
            }),
            Err(e) => Err(self.engine_err(e)),
        }
    }

    async fn start(&self, spec: &SandboxSpec) -> Result<String, SandboxError> {
        self.create_workspace(spec).await?;
        let options = CreateContainerOptionsBuilder::default()
            .name(&spec.name)
            .build();
        let created = match self
            .client()?
            .create_container(Some(options), Self::create_body(spec))
            .await
        {
            Ok(c) => c,
            Err(e) if is_status(&e, 409) => {
                return Err(SandboxError::NameConflict {
                    name: spec.name.clone(),
                })
            }
            Err(e) if is_status(&e, 404) => {
                return Err(SandboxError::ImageMissing {
                    image: spec.image.clone(),
                    endpoint: self.endpoint.clone(),
                })
            }
            Err(e) => return Err(self.engine_err(e)),
        };
        if let Err(e) = self.client()?.start_container(&created.id, None).await {
            // Keep nothing half-made: a container that never started holds no work.
            let _ = self.remove(&created.id).await;
            return Err(self.engine_err(e));
        }
        Ok(created.id)
    }

    async fn find(&self, name: &str) -> Result<Option<String>, SandboxError> {
        let filters = HashMap::from([("name", vec![name])]);
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let list = self
            .client()?
            .list_containers(Some(options))
            .await
            .map_err(|e| self.engine_err(e))?;
        // The name filter matches substrings; insist on the exact name.
        let wanted = format!("/{name}");
        Ok(list
            .into_iter()
            .find(|c| c.names.iter().flatten().any(|n| *n == wanted))
            .and_then(|c| c.id))
    }

    async fn status(&self, id: &str) -> Result<SandboxStatus, SandboxError> {
        let inspect = match self
            .client()?
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
        {
            Ok(i) => i,
            Err(e) if is_status(&e, 404) => return Ok(SandboxStatus::Missing),
            Err(e) => return Err(self.engine_err(e)),
        };
        let state = inspect.state.unwrap_or_default();
        if state.running == Some(true) || state.restarting == Some(true) {
            return Ok(SandboxStatus::Running);
        }
        if state.status == Some(bollard::models::ContainerStateStatusEnum::CREATED) {
            // Created but never started (a front-end died in between): not running,
            // and it never produced work.
            return Ok(SandboxStatus::Exited {
                code: -1,
                oom_killed: false,
            });
        }
        Ok(SandboxStatus::Exited {
            code: state.exit_code.unwrap_or(-1),
            oom_killed: state.oom_killed.unwrap_or(false),
        })
    }

    async fn wait(&self, id: &str) -> Result<(), SandboxError> {
        let mut stream = self.client()?.wait_container(id, None);
        match stream.next().await {
            Some(Ok(_)) | None => Ok(()),
            Some(Err(BollardError::DockerContainerWaitError { .. })) => Ok(()),
            Some(Err(e)) if is_status(&e, 404) => Ok(()),
            Some(Err(e)) => Err(self.engine_err(e)),
        }
    }

    async fn logs(&self, id: &str) -> Result<Vec<u8>, SandboxError> {
        let mut out = Vec::new();
        let mut stream = self.follow_or_not(id, false);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            let room = super::MAX_LOG_BYTES.saturating_sub(out.len());
            if chunk.len() > room {
                out.extend_from_slice(&chunk[..room]);
                out.extend_from_slice(
                    format!(
                        "\n[handoff: output cut at {} MiB]\n",
                        super::MAX_LOG_BYTES >> 20
                    )
                    .as_bytes(),
                );
                break;
            }
            out.extend(chunk);
        }
        Ok(out)
    }

    fn follow_logs(&self, id: &str) -> LogStream {
        self.follow_or_not(id, true)
    }

    async fn env_values(
        &self,
        id: &str,
        names: &[String],
    ) -> Result<Vec<(String, String)>, SandboxError> {
        if names.is_empty() {
            return Ok(vec![]);
        }
        let inspect = match self
            .client()?
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
        {
            Ok(i) => i,
            Err(e) if is_status(&e, 404) => return Ok(vec![]),
            Err(e) => return Err(self.engine_err(e)),
        };
        let env = inspect.config.and_then(|c| c.env).unwrap_or_default();
        Ok(env
            .into_iter()
            .filter_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                names
                    .iter()
                    .any(|n| n == k)
                    .then(|| (k.to_string(), v.to_string()))
            })
            .collect())
    }

    async fn stop(&self, id: &str) -> Result<(), SandboxError> {
        let options = StopContainerOptionsBuilder::default().t(3).build();
        match self.client()?.stop_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            // Already stopped (304) or gone (404): the goal is reached.
            Err(e) if is_status(&e, 304) || is_status(&e, 404) => Ok(()),
            Err(e) => Err(self.engine_err(e)),
        }
    }

    async fn remove(&self, id: &str) -> Result<(), SandboxError> {
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        match self.client()?.remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if is_status(&e, 404) => Ok(()),
            Err(e) => Err(self.engine_err(e)),
        }
    }

    async fn egress_network(&self) -> Result<EgressNetwork, SandboxError> {
        let client = self.client()?;
        let inspect = match client
            .inspect_network(
                EGRESS_NETWORK,
                None::<bollard::query_parameters::InspectNetworkOptions>,
            )
            .await
        {
            Ok(n) => n,
            Err(e) if is_status(&e, 404) => {
                let request = bollard::models::NetworkCreateRequest {
                    name: EGRESS_NETWORK.to_string(),
                    driver: Some("bridge".into()),
                    // No route out: the gateway address (the host) is all it reaches.
                    internal: Some(true),
                    labels: Some(HashMap::from([(
                        "handoff.egress".to_string(),
                        "true".to_string(),
                    )])),
                    ..Default::default()
                };
                match client.create_network(request).await {
                    Ok(_) => {}
                    // Another front-end made it meanwhile.
                    Err(e) if is_status(&e, 409) => {}
                    Err(e) => return Err(self.engine_err(e)),
                }
                client
                    .inspect_network(
                        EGRESS_NETWORK,
                        None::<bollard::query_parameters::InspectNetworkOptions>,
                    )
                    .await
                    .map_err(|e| self.engine_err(e))?
            }
            Err(e) => return Err(self.engine_err(e)),
        };
        if inspect.internal != Some(true) {
            return Err(SandboxError::Engine(format!(
                "the network {EGRESS_NETWORK} exists but is not internal (it has a route out); \
                 remove it (`docker network rm {EGRESS_NETWORK}`) and Handoff makes it again"
            )));
        }
        let gateway = inspect
            .ipam
            .and_then(|i| i.config)
            .into_iter()
            .flatten()
            .find_map(|c| c.gateway.and_then(|g| g.parse().ok()))
            .ok_or_else(|| {
                SandboxError::Engine(format!(
                    "the network {EGRESS_NETWORK} has no gateway address"
                ))
            })?;
        Ok(EgressNetwork {
            name: EGRESS_NETWORK.to_string(),
            gateway,
        })
    }

    async fn release_workspace(&self, name: &str) -> Result<(), SandboxError> {
        let options = bollard::query_parameters::RemoveVolumeOptionsBuilder::default()
            .force(true)
            .build();
        match self.client()?.remove_volume(name, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if is_status(&e, 404) => Ok(()),
            Err(e) => Err(self.engine_err(e)),
        }
    }
}

impl DockerSandbox {
    /// The workspace volume: an overlay the engine mounts when the container starts,
    /// of folders on the host (the local engine sees the host's paths).
    async fn create_workspace(&self, spec: &SandboxSpec) -> Result<(), SandboxError> {
        let ws = &spec.workspace;
        let mut paths: Vec<&std::path::Path> = ws.lowers.iter().map(|p| p.as_path()).collect();
        paths.push(&ws.upper);
        paths.push(&ws.work);
        for p in &paths {
            let text = p.to_string_lossy();
            // overlayfs separates layers with `:` and Docker options with `,`.
            if text.contains([':', ',']) {
                return Err(SandboxError::Engine(format!(
                    "the path {text} holds a `:` or `,`, which an overlay mount cannot name;                      move the repository to a path without them"
                )));
            }
        }
        let lowers: Vec<String> = ws.lowers.iter().map(|p| p.display().to_string()).collect();
        let options = format!(
            "lowerdir={},upperdir={},workdir={},userxattr",
            lowers.join(":"),
            ws.upper.display(),
            ws.work.display()
        );
        let request = bollard::models::VolumeCreateRequest {
            name: Some(spec.name.clone()),
            driver: Some("local".into()),
            driver_opts: Some(HashMap::from([
                ("type".to_string(), "overlay".to_string()),
                ("device".to_string(), "overlay".to_string()),
                ("o".to_string(), options),
            ])),
            labels: Some(spec.labels.clone().into_iter().collect()),
            ..Default::default()
        };
        self.client()?
            .create_volume(request)
            .await
            .map_err(|e| self.engine_err(e))?;
        Ok(())
    }

    fn follow_or_not(&self, id: &str, follow: bool) -> LogStream {
        let options = LogsOptionsBuilder::default()
            .follow(follow)
            .stdout(true)
            .stderr(true)
            .build();
        let client = match self.client() {
            Ok(c) => c,
            Err(e) => return Box::pin(futures_util::stream::once(async move { Err(e) })),
        };
        let this = self.clone();
        let stream = client.logs(id, Some(options)).filter_map(move |item| {
            let result = match item {
                Ok(LogOutput::StdOut { message })
                | Ok(LogOutput::StdErr { message })
                | Ok(LogOutput::Console { message }) => Some(Ok(message.to_vec())),
                Ok(LogOutput::StdIn { .. }) => None,
                Err(e) if is_status(&e, 404) => None,
                Err(e) => Some(Err(this.engine_err(e))),
            };
            std::future::ready(result)
        });
        Box::pin(stream)
    }
}
