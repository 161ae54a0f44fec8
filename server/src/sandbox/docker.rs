//! The local Docker engine, through bollard.
//!
//! Containers are created detached and never auto-removed: their exit status and logs
//! must survive the front-end that started them, until a front-end finalizes the task.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, HostConfig, Mount, MountType,
};
use bollard::query_parameters::{
    InspectContainerOptionsBuilder, ListContainersOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;

use super::endpoint::{self, Endpoint, EngineSettings, WorkspaceMode};
use super::{
    CollectSpec, EgressNetwork, LogStream, Sandbox, SandboxError, SandboxNetwork, SandboxSpec,
    SandboxStatus,
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
    /// How workspaces reach containers ([`WorkspaceMode::Auto`]: an overlay on a
    /// local Docker engine, shipped elsewhere).
    workspace: WorkspaceMode,
    /// The engine is reached through a unix socket of this machine.
    local: bool,
    /// Whether the engine is Podman, asked once.
    podman: Arc<tokio::sync::OnceCell<bool>>,
    /// How long a shipped workspace's base image no container uses stays.
    pub(super) keep_bases: Duration,
    /// The ssh carrier of an `ssh://` engine, kept while any clone lives.
    _tunnel: Option<Arc<super::ssh::Tunnel>>,
}

impl Default for DockerSandbox {
    fn default() -> Self {
        DockerSandbox::new()
    }
}

/// The open-file limit of an agent on Podman (see [`DockerSandbox::create_body`]).
const PODMAN_NOFILE: i64 = 4096;

/// The process limit of an agent's uid on Podman; `pids` limits the container itself.
const PODMAN_NPROC: i64 = 16384;

/// How long one request to the engine may take (a base image of a large repository
/// is one request).
const REQUEST_TIMEOUT_SECS: u64 = 600;

impl DockerSandbox {
    /// A client for the engine named by DOCKER_HOST (or the default socket). Does no
    /// I/O: an engine that is down shows up as [`SandboxError::Unreachable`] on first
    /// use, so read-only front-end commands still work without Docker.
    pub fn new() -> DockerSandbox {
        DockerSandbox::for_engine(&EngineSettings::default())
    }

    /// A client for the engine `settings` name (a configuration's `[engine]`), with
    /// the environment's `DOCKER_*` variables for what they leave unsaid. Does no I/O
    /// (an ssh engine's carrier socket is made, not used).
    pub fn for_engine(settings: &EngineSettings) -> DockerSandbox {
        let env = |name: &str| std::env::var(name).ok();
        let target = match endpoint::resolve(settings, &env) {
            Ok(t) => t,
            Err(message) => {
                let name = settings
                    .host
                    .clone()
                    .or_else(|| env("DOCKER_HOST").filter(|h| !h.is_empty()))
                    .unwrap_or_else(|| "the configured engine".into());
                return DockerSandbox::unreachable(name, message);
            }
        };
        let version = bollard::API_DEFAULT_VERSION;
        let mut tunnel = None;
        let connected = match &target.endpoint {
            Endpoint::Unix(path) => Docker::connect_with_unix(
                &path.display().to_string(),
                REQUEST_TIMEOUT_SECS,
                version,
            ),
            Endpoint::Tcp { addr, tls: None } => {
                Docker::connect_with_http(addr, REQUEST_TIMEOUT_SECS, version)
            }
            Endpoint::Tcp {
                addr,
                tls: Some(files),
            } => {
                for f in [&files.ca, &files.cert, &files.key] {
                    if !f.is_file() {
                        return DockerSandbox::unreachable(
                            target.name.clone(),
                            format!(
                                "the TLS file {} is missing (set tls_ca, tls_cert and tls_key \
                                 or cert_dir in [engine], or DOCKER_CERT_PATH)",
                                f.display()
                            ),
                        );
                    }
                }
                Docker::connect_with_ssl(
                    addr,
                    &files.key,
                    &files.cert,
                    &files.ca,
                    REQUEST_TIMEOUT_SECS,
                    version,
                )
            }
            Endpoint::Ssh(ssh) => match super::ssh::Tunnel::start(ssh) {
                Ok(t) => {
                    let socket = t.socket().display().to_string();
                    tunnel = Some(Arc::new(t));
                    Docker::connect_with_unix(&socket, REQUEST_TIMEOUT_SECS, version)
                }
                Err(e) => {
                    return DockerSandbox::unreachable(
                        target.name.clone(),
                        format!("cannot start ssh for it: {e}"),
                    )
                }
            },
        };
        match connected {
            Ok(docker) => DockerSandbox {
                docker: Some(docker),
                endpoint: target.name.clone(),
                unreachable: String::new(),
                workspace: target.workspace,
                local: target.is_local(),
                podman: Default::default(),
                keep_bases: settings.keep_base_images(),
                _tunnel: tunnel,
            },
            Err(e) => DockerSandbox::unreachable(target.name.clone(), e.to_string()),
        }
    }

    fn unreachable(endpoint: String, message: String) -> DockerSandbox {
        DockerSandbox {
            docker: None,
            endpoint,
            unreachable: message,
            workspace: WorkspaceMode::Auto,
            local: true,
            podman: Default::default(),
            keep_bases: super::endpoint::DEFAULT_KEEP_BASE_IMAGES,
            _tunnel: None,
        }
    }

    /// Connects and negotiates the API version, so an older engine (20.10 speaks API
    /// 1.41) is addressed in its own version. Fails when the engine does not answer.
    pub async fn connect() -> Result<DockerSandbox, SandboxError> {
        DockerSandbox::connect_to(&EngineSettings::default()).await
    }

    /// [`DockerSandbox::connect`] to the engine `settings` name.
    pub async fn connect_to(settings: &EngineSettings) -> Result<DockerSandbox, SandboxError> {
        let sandbox = DockerSandbox::for_engine(settings);
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

    /// Whether this machine's disk is shared with the engine's containers: false for a
    /// remote engine.
    pub fn is_local(&self) -> bool {
        self.local
    }

    /// Whether workspaces are shipped to this engine rather than mounted.
    pub async fn ships_workspaces(&self) -> bool {
        match self.workspace {
            WorkspaceMode::Shipped => true,
            WorkspaceMode::Overlay => false,
            WorkspaceMode::Auto => !self.local || self.is_podman().await,
        }
    }

    /// Whether the engine is Podman (its Docker API differs in small ways).
    pub async fn is_podman(&self) -> bool {
        *self
            .podman
            .get_or_init(|| async {
                let Ok(client) = self.client() else {
                    return false;
                };
                client.version().await.is_ok_and(|v| {
                    v.components
                        .unwrap_or_default()
                        .iter()
                        .any(|c| c.name.to_lowercase().contains("podman"))
                })
            })
            .await
    }

    pub(super) fn endpoint_name(&self) -> String {
        self.endpoint.clone()
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

    pub(super) fn engine_err(&self, e: BollardError) -> SandboxError {
        match e {
            // No answer, or the connection broke before the answer was whole (the
            // engine died mid-request): the engine cannot be reached, and what it was
            // asked may or may not have happened.
            BollardError::HyperLegacyError { .. }
            | BollardError::HyperResponseError { .. }
            | BollardError::IOError { .. }
            | BollardError::RequestTimeoutError
            | BollardError::SocketNotFoundError(_) => SandboxError::Unreachable {
                endpoint: self.endpoint.clone(),
                message: e.to_string(),
            },
            other => SandboxError::Engine(other.to_string()),
        }
    }

    /// The container of `spec`: mounting its overlay workspace and host folders when
    /// `mounts`, else with nothing of the host's (a shipped workspace).
    pub(super) async fn create_body(
        &self,
        spec: &SandboxSpec,
        mounts: bool,
    ) -> ContainerCreateBody {
        let mut body = Self::body(spec, mounts);
        if self.is_podman().await {
            // Podman asks the runtime for its own default limits (a million open
            // files), which a service without CAP_SYS_RESOURCE, or whose own hard
            // limit is lower, cannot grant: the container then never starts ("error
            // setting rlimit type 7"). Explicit limits no engine lowers below are
            // granted everywhere (a machine's hard limits are rarely under these).
            if let Some(host) = body.host_config.as_mut() {
                host.ulimits = Some(vec![
                    bollard::models::ResourcesUlimits {
                        name: Some("nofile".into()),
                        soft: Some(PODMAN_NOFILE),
                        hard: Some(PODMAN_NOFILE),
                    },
                    bollard::models::ResourcesUlimits {
                        name: Some("nproc".into()),
                        soft: Some(PODMAN_NPROC),
                        hard: Some(PODMAN_NPROC),
                    },
                ]);
            }
        }
        body
    }

    /// `GET /containers/{id}/json`, with the container's sizes when `size`; `None`
    /// when it is gone. Podman calls a container whose process has ended but whose
    /// cleanup has not run yet `stopped`, a state the Docker API does not have and
    /// bollard refuses to read: it is asked again until the cleanup is done
    /// (milliseconds; at most 10 s).
    pub(super) async fn inspect(
        &self,
        id: &str,
        size: bool,
    ) -> Result<Option<ContainerInspectResponse>, SandboxError> {
        let client = self.client()?;
        let mut attempts = 0;
        loop {
            let options = InspectContainerOptionsBuilder::default().size(size).build();
            match client.inspect_container(id, Some(options)).await {
                Ok(i) => return Ok(Some(i)),
                Err(e) if is_status(&e, 404) => return Ok(None),
                Err(BollardError::JsonDataError { ref message, .. })
                    if message.contains("`stopped`") && attempts < 100 =>
                {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(self.engine_err(e)),
            }
        }
    }

    fn body(spec: &SandboxSpec, mounts: bool) -> ContainerCreateBody {
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
        let use_mounts = mounts;
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
            mounts: use_mounts.then_some(mounts),
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

pub(super) fn is_status(e: &BollardError, code: u16) -> bool {
    matches!(e, BollardError::DockerResponseServerError { status_code, .. } if *status_code == code)
}

impl Sandbox for DockerSandbox {
    fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    async fn check_image(&self, image: &str) -> Result<String, SandboxError> {
        match self.client()?.inspect_image(image).await {
            Ok(found) => Ok(found.id.unwrap_or_else(|| image.to_string())),
            Err(e) if is_status(&e, 404) => Err(SandboxError::ImageMissing {
                image: image.to_string(),
                endpoint: self.endpoint.clone(),
            }),
            Err(e) => Err(self.engine_err(e)),
        }
    }

    async fn start(&self, spec: &SandboxSpec) -> Result<String, SandboxError> {
        if self.ships_workspaces().await {
            return self.start_shipped(spec).await;
        }
        self.create_workspace(spec).await?;
        let body = self.create_body(spec, true).await;
        let id = self.create_named(spec, body).await?;
        if let Err(e) = self.client()?.start_container(&id, None).await {
            let e = self.engine_err(e);
            // Keep nothing half-made: a container the engine refused to start holds no
            // work. One whose start went unanswered may be running, its agent writing:
            // it stays, for the caller to find.
            if !matches!(e, SandboxError::Unreachable { .. }) {
                let _ = self.remove(&id).await;
            }
            return Err(e);
        }
        Ok(id)
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
        let Some(inspect) = self.inspect(id, false).await? else {
            return Ok(SandboxStatus::Missing);
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
        let Some(inspect) = self.inspect(id, false).await? else {
            return Ok(vec![]);
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
        let shipped = self.shipped_base(id).await.is_some();
        match self.client()?.remove_container(id, Some(options)).await {
            Ok(()) => {
                if shipped {
                    self.prune_bases().await;
                }
                Ok(())
            }
            Err(e) if is_status(&e, 404) => Ok(()),
            // Another front-end (or the engine's own auto-removal) is removing it:
            // done once it is gone.
            Err(e) if is_status(&e, 409) && e.to_string().contains("already in progress") => {
                for _ in 0..100 {
                    if matches!(self.status(id).await, Ok(SandboxStatus::Missing)) {
                        return Ok(());
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(self.engine_err(e))
            }
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

    async fn collect(&self, id: &str, spec: &CollectSpec) -> Result<Vec<String>, SandboxError> {
        self.collect_shipped(id, spec).await
    }

    async fn written_bytes(&self, id: &str) -> Result<Option<u64>, SandboxError> {
        let Some(inspect) = self.inspect(id, true).await? else {
            return Ok(None);
        };
        let shipped = inspect
            .config
            .as_ref()
            .and_then(|c| c.labels.as_ref())
            .and_then(|l| l.get(super::ship::SHIPPED_LABEL))
            .is_some_and(|v| v == "shipped");
        Ok(shipped.then(|| inspect.size_rw.unwrap_or(0).max(0) as u64))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_engine_that_breaks_off_its_answer_is_unreachable_one_that_refuses_is_not() {
        let sandbox = DockerSandbox::new();
        let broken = BollardError::IOError {
            err: std::io::Error::from(std::io::ErrorKind::ConnectionReset),
        };
        assert!(matches!(
            sandbox.engine_err(broken),
            SandboxError::Unreachable { .. }
        ));
        assert!(matches!(
            sandbox.engine_err(BollardError::RequestTimeoutError),
            SandboxError::Unreachable { .. }
        ));
        let refused = BollardError::DockerResponseServerError {
            status_code: 500,
            message: "OCI runtime create failed".into(),
        };
        assert!(matches!(
            sandbox.engine_err(refused),
            SandboxError::Engine(m) if m.contains("OCI runtime create failed")
        ));
    }
}
