//! Kubernetes, through kube-rs: one Job per turn (see [`spec`]), the agent's
//! environment in a Secret, the workspace streamed in and out of the pod through
//! `exec`, logs followed from the apiserver, cancel as a TERM to the agent, and removal
//! as a delete with propagation. Everything a turn makes carries its labels, so a
//! front-end that starts later finds it again ([`KubeSandbox::find`]) and can remove
//! what an earlier one left ([`KubeSandbox::leftovers`]).
//!
//! A cluster shares no disk with Handoff: this module moves bytes (an archive in, an
//! archive of a pod's folder out) and never reads or writes the host's task folders
//! itself. What goes in is packed, and what comes back checked and written home, by
//! [`super::ship`] — the same code as for a remote Docker engine ([`ResultSource`]
//! is all this module adds to it).
//!
//! It knows Jobs, pods, Secrets and exec; nothing of tasks, git or front-ends.

pub mod check;
pub mod spec;
pub mod target;
mod transfer;

use std::time::Duration;

use ::kube::api::{Api, DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams};
use futures_util::AsyncBufReadExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ContainerState, Pod, Secret};
use k8s_openapi::api::networking::v1::NetworkPolicy;

use super::ship::{self, ResultSource};
use super::{
    CollectSpec, EgressNetwork, LogStream, Sandbox, SandboxError, SandboxSpec, SandboxStatus,
};
pub use target::KubeTarget;

/// The image of Handoff's own containers in a pod when `tools_image` is not set:
/// Docker's official busybox built with musl, whose `/bin/busybox` is static.
pub const DEFAULT_TOOLS_IMAGE: &str = "busybox:1.36-musl";

/// How long a pod may take to get its receiving container running (image pull,
/// scheduling) before the start gives up.
const START_TIMEOUT: Duration = Duration::from_secs(180);

/// Waiting reasons that mean the image will not come.
const IMAGE_ERRORS: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "ErrImageNeverPull",
    "InvalidImageName",
];

#[derive(Clone)]
pub struct KubeSandbox {
    client: ::kube::Client,
    namespace: String,
    /// For messages: the server and namespace.
    endpoint: String,
    /// The image of Handoff's own containers of a pod ([`spec`]).
    tools_image: String,
}

fn api_err(e: ::kube::Error) -> SandboxError {
    match e {
        ::kube::Error::Api(status) => {
            SandboxError::Cluster(format!("{} ({})", status.message, status.reason))
        }
        other => SandboxError::Cluster(format!("{other}")),
    }
}

fn is_status(e: &::kube::Error, code: u16) -> bool {
    matches!(e, ::kube::Error::Api(s) if s.code == code)
}

impl KubeSandbox {
    /// A client for the cluster `target` names. Reads the kubeconfig; does no request.
    pub async fn new(target: &KubeTarget) -> Result<KubeSandbox, SandboxError> {
        let (config, namespace) = target.client_config().await?;
        let endpoint = format!("{} (namespace {namespace})", config.cluster_url);
        let client = ::kube::Client::try_from(config).map_err(|e| SandboxError::Unreachable {
            endpoint: endpoint.clone(),
            message: e.to_string(),
        })?;
        Ok(KubeSandbox {
            client,
            namespace,
            endpoint,
            tools_image: target.tools_image().to_string(),
        })
    }

    /// The server and namespace, for messages.
    pub fn endpoint_name(&self) -> String {
        self.endpoint.clone()
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn tools_image(&self) -> &str {
        &self.tools_image
    }

    pub fn client(&self) -> &::kube::Client {
        &self.client
    }

    fn jobs(&self) -> Api<Job> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    fn network_policies(&self) -> Api<NetworkPolicy> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    fn unreachable(&self, e: ::kube::Error) -> SandboxError {
        match e {
            ::kube::Error::Api(_) => api_err(e),
            other => SandboxError::Unreachable {
                endpoint: self.endpoint.clone(),
                message: other.to_string(),
            },
        }
    }

    /// Creates the turn's Secret and Job, waits for its pod to be ready to receive,
    /// streams `archive` (a tar of `workspace/`, `home/agent/`, `run/handoff/`, …,
    /// relative to `/`, without entries for those folders themselves) into it, and
    /// lets the agent start. Returns the turn's id (the Job's name).
    pub async fn start_shipped(
        &self,
        spec: &SandboxSpec,
        archive: &[u8],
    ) -> Result<String, SandboxError> {
        let secret = spec::secret(spec)?;
        let policy = spec::network_policy(spec)?;
        let job = spec::job(spec, &self.tools_image)?;
        match self.secrets().create(&PostParams::default(), &secret).await {
            Ok(_) => {}
            Err(e) if is_status(&e, 409) => {
                return Err(SandboxError::NameConflict {
                    name: spec.name.clone(),
                })
            }
            Err(e) => return Err(self.unreachable(e)),
        }
        // The policy exists before the pod does.
        if let Some(policy) = &policy {
            if let Err(e) = self
                .network_policies()
                .create(&PostParams::default(), policy)
                .await
            {
                let _ = self
                    .secrets()
                    .delete(&spec.name, &DeleteParams::default())
                    .await;
                return Err(match is_status(&e, 409) {
                    true => SandboxError::NameConflict {
                        name: spec.name.clone(),
                    },
                    false => self.unreachable(e),
                });
            }
        }
        let created = match self.jobs().create(&PostParams::default(), &job).await {
            Ok(j) => j,
            Err(e) => {
                let _ = self
                    .secrets()
                    .delete(&spec.name, &DeleteParams::default())
                    .await;
                let _ = self
                    .network_policies()
                    .delete(&spec.name, &DeleteParams::default())
                    .await;
                if is_status(&e, 409) {
                    return Err(SandboxError::NameConflict {
                        name: spec.name.clone(),
                    });
                }
                return Err(self.unreachable(e));
            }
        };
        // The Secret goes with the Job: deleting the Job (with propagation) deletes it.
        if let Some(uid) = created.metadata.uid.as_deref() {
            let owner = serde_json::json!({
                "metadata": { "ownerReferences": [{
                    "apiVersion": "batch/v1", "kind": "Job", "name": spec.name, "uid": uid,
                }]}
            });
            self.secrets()
                .patch(&spec.name, &PatchParams::default(), &Patch::Merge(&owner))
                .await
                .map_err(api_err)?;
            if policy.is_some() {
                self.network_policies()
                    .patch(&spec.name, &PatchParams::default(), &Patch::Merge(&owner))
                    .await
                    .map_err(api_err)?;
            }
        }
        let result = async {
            let pod = self.wait_receiving(spec).await?;
            transfer::send(self, &pod, archive).await
        }
        .await;
        if let Err(e) = result {
            // Nothing of this turn ran: leave nothing behind.
            let _ = self.remove(&spec.name).await;
            return Err(e);
        }
        Ok(spec.name.clone())
    }

    /// The pod of the turn once its receiving container runs.
    async fn wait_receiving(&self, spec: &SandboxSpec) -> Result<String, SandboxError> {
        let started = std::time::Instant::now();
        loop {
            if let Some(pod) = self.pod_of(&spec.name).await? {
                let name = pod.metadata.name.clone().unwrap_or_default();
                let status = pod.status.unwrap_or_default();
                let init = |container: &str| {
                    status
                        .init_container_statuses
                        .iter()
                        .flatten()
                        .find(|c| c.name == container)
                        .and_then(|c| c.state.clone())
                        .unwrap_or_default()
                };
                let (tools, receive) = (init(spec::TOOLS), init(spec::RECEIVE));
                if receive.running.is_some() {
                    return Ok(name);
                }
                // Each init container runs one of the images: a missing one shows there.
                for (state, image) in [(&tools, &self.tools_image), (&receive, &spec.image)] {
                    let reason = state.waiting.as_ref().and_then(|w| w.reason.as_deref());
                    if let Some(reason) = reason.filter(|r| IMAGE_ERRORS.contains(r)) {
                        return Err(SandboxError::ImageUnavailable {
                            image: image.clone(),
                            endpoint: self.endpoint.clone(),
                            reason: reason.to_string(),
                        });
                    }
                }
                if let Some(t) = tools.terminated.as_ref().filter(|t| t.exit_code != 0) {
                    return Err(SandboxError::Cluster(format!(
                        "the tools image {} could not give the pod {name} its busybox \
                         (exit code {}): it must hold a static busybox at {} \
                         (`tools_image` of [engine])",
                        self.tools_image,
                        t.exit_code,
                        spec::TOOLS_BUSYBOX
                    )));
                }
                if let Some(t) = &receive.terminated {
                    return Err(SandboxError::Cluster(format!(
                        "the pod {name} ended before it received the workspace ({})",
                        t.reason.as_deref().unwrap_or("no reason given")
                    )));
                }
                if status.phase.as_deref() == Some("Failed") {
                    return Err(SandboxError::Cluster(format!(
                        "the pod {name} failed before it received the workspace: {}",
                        status.message.unwrap_or_default()
                    )));
                }
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(SandboxError::Cluster(format!(
                    "the pod of {} was not running within {}s (is a node ready, and does it \
                     have the image {}?)",
                    spec.name,
                    START_TIMEOUT.as_secs(),
                    spec.image
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until the keeper of turn `id` runs: the volumes are read through it, and
    /// an agent that ended at once may have ended before the kubelet started it.
    async fn wait_keeper(&self, id: &str) -> Result<(), SandboxError> {
        let started = std::time::Instant::now();
        loop {
            let Some(pod) = self.pod_of(id).await? else {
                return Err(SandboxError::Cluster(format!("the turn {id} has no pod")));
            };
            let name = pod.metadata.name.clone().unwrap_or_default();
            let keeper = pod
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .into_iter()
                .flatten()
                .find(|c| c.name == spec::KEEPER)
                .and_then(|c| c.state.clone());
            let waited = started.elapsed() > START_TIMEOUT;
            match keeper {
                Some(ContainerState {
                    running: Some(_), ..
                }) => return Ok(()),
                Some(ContainerState {
                    terminated: Some(t),
                    ..
                }) => {
                    return Err(SandboxError::Cluster(format!(
                        "the container {} of the pod {name} ended ({}), so its workspace \
                         cannot be read",
                        spec::KEEPER,
                        t.reason.as_deref().unwrap_or("no reason given")
                    )))
                }
                Some(ContainerState {
                    waiting: Some(w), ..
                }) if IMAGE_ERRORS.contains(&w.reason.as_deref().unwrap_or("")) || waited => {
                    return Err(SandboxError::Cluster(format!(
                        "the container {} of the pod {name} (image {}) does not start ({}: \
                         {}), so its workspace cannot be read",
                        spec::KEEPER,
                        self.tools_image,
                        w.reason.as_deref().unwrap_or("waiting"),
                        w.message.as_deref().unwrap_or("")
                    )))
                }
                _ if waited => {
                    return Err(SandboxError::Cluster(format!(
                        "the container {} of the pod {name} was not running within {}s",
                        spec::KEEPER,
                        START_TIMEOUT.as_secs()
                    )))
                }
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    /// The pod of the turn `name`, if one exists.
    async fn pod_of(&self, name: &str) -> Result<Option<Pod>, SandboxError> {
        let list = self
            .pods()
            .list(&ListParams::default().labels(&format!("{}={name}", spec::NAME_LABEL)))
            .await
            .map_err(|e| self.unreachable(e))?;
        // A pod being deleted is not the turn's any more.
        Ok(list
            .items
            .into_iter()
            .find(|p| p.metadata.deletion_timestamp.is_none()))
    }

    async fn pod_name(&self, id: &str) -> Result<String, SandboxError> {
        self.pod_of(id)
            .await?
            .and_then(|p| p.metadata.name)
            .ok_or_else(|| SandboxError::Cluster(format!("the turn {id} has no pod")))
    }

    /// The turn named `name`, if its Job exists.
    pub async fn find(&self, name: &str) -> Result<Option<String>, SandboxError> {
        let list = self
            .jobs()
            .list(&ListParams::default().labels(&format!("{}={name}", spec::NAME_LABEL)))
            .await
            .map_err(|e| self.unreachable(e))?;
        Ok(list
            .items
            .into_iter()
            .find(|j| j.metadata.deletion_timestamp.is_none())
            .and(Some(name.to_string())))
    }

    /// Turns whose labels say they belong to the repository with label value
    /// `repo_label` (see [`spec::label_value`]): what a front-end reconciles with, and
    /// what a clean-up removes.
    pub async fn leftovers(&self, repo_label: &str) -> Result<Vec<String>, SandboxError> {
        let selector = format!("handoff.repo={}", spec::label_value(repo_label));
        let mut names: Vec<String> = Vec::new();
        let jobs = self
            .jobs()
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| self.unreachable(e))?;
        let secrets = self
            .secrets()
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| self.unreachable(e))?;
        let labelled = jobs
            .items
            .iter()
            .map(|j| &j.metadata)
            .chain(secrets.items.iter().map(|s| &s.metadata));
        for meta in labelled {
            if let Some(name) = meta.labels.as_ref().and_then(|l| l.get(spec::NAME_LABEL)) {
                if !names.contains(name) {
                    names.push(name.clone());
                }
            }
        }
        names.sort();
        Ok(names)
    }

    pub async fn status(&self, id: &str) -> Result<SandboxStatus, SandboxError> {
        let Some(pod) = self.pod_of(id).await? else {
            // A Job whose pod is not made yet is starting; no Job, nothing.
            return Ok(match self.find(id).await? {
                Some(_) => SandboxStatus::Running,
                None => SandboxStatus::Missing,
            });
        };
        Ok(pod_status(&pod))
    }

    /// Resolves when the agent is no longer running.
    pub async fn wait(&self, id: &str) -> Result<(), SandboxError> {
        loop {
            if self.status(id).await? != SandboxStatus::Running {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The agent's output so far (at most [`super::MAX_LOG_BYTES`]).
    pub async fn logs(&self, id: &str) -> Result<Vec<u8>, SandboxError> {
        let Some(pod) = self.pod_of(id).await? else {
            return Ok(Vec::new());
        };
        if !agent_started(&pod) {
            return Ok(Vec::new());
        }
        let name = pod.metadata.name.unwrap_or_default();
        let params = LogParams {
            container: Some(spec::AGENT.into()),
            limit_bytes: Some(super::MAX_LOG_BYTES as i64),
            ..Default::default()
        };
        match self.pods().logs(&name, &params).await {
            Ok(text) => Ok(text.into_bytes()),
            Err(e) if is_status(&e, 404) => Ok(Vec::new()),
            Err(e) => Err(api_err(e)),
        }
    }

    /// Output from the start, then live until the agent ends.
    pub fn follow_logs(&self, id: &str) -> LogStream {
        let this = self.clone();
        let id = id.to_string();
        let stream = async_stream_follow(this, id);
        Box::pin(stream)
    }

    /// Values of the named variables of the turn's environment (from its Secret).
    pub async fn env_values(
        &self,
        id: &str,
        names: &[String],
    ) -> Result<Vec<(String, String)>, SandboxError> {
        if names.is_empty() {
            return Ok(vec![]);
        }
        let secret = match self.secrets().get(id).await {
            Ok(s) => s,
            Err(e) if is_status(&e, 404) => return Ok(vec![]),
            Err(e) => return Err(api_err(e)),
        };
        let data = secret.data.unwrap_or_default();
        Ok(names
            .iter()
            .filter_map(|n| {
                data.get(n)
                    .map(|v| (n.clone(), String::from_utf8_lossy(&v.0).into_owned()))
            })
            .collect())
    }

    /// Stops the agent: TERM, then after 3 s KILL for what is left of it. The pod
    /// stays, with the agent's exit status and the workspace, until removed.
    pub async fn stop(&self, id: &str) -> Result<(), SandboxError> {
        if self.status(id).await? != SandboxStatus::Running {
            return Ok(());
        }
        let pod = self.pod_name(id).await?;
        // The wrapper (PID 1) forwards TERM to the agent. Before the agent started
        // there is nothing to signal: ending the receiving container ends the pod.
        let Some(p) = self.pod_of(id).await? else {
            return Ok(());
        };
        if !agent_started(&p) {
            return self.remove(id).await;
        }
        let busybox = spec::AGENT_BUSYBOX;
        let _ = transfer::run(self, &pod, spec::AGENT, &[busybox, "kill", "-TERM", "1"]).await;
        for _ in 0..30 {
            if self.status(id).await? != SandboxStatus::Running {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Everything of the agent's uid in its container but PID 1: the wrapper then
        // exits with the agent's status.
        let _ = transfer::run(self, &pod, spec::AGENT, &[busybox, "kill", "-KILL", "-1"]).await;
        Ok(())
    }

    /// Deletes the turn's Job (its pod with it, by propagation), NetworkPolicy and
    /// Secret. Removing
    /// a turn that is gone is not an error.
    pub async fn remove(&self, id: &str) -> Result<(), SandboxError> {
        let params = DeleteParams {
            propagation_policy: Some(::kube::api::PropagationPolicy::Background),
            ..Default::default()
        };
        match self.jobs().delete(id, &params).await {
            Ok(_) => {}
            Err(e) if is_status(&e, 404) => {}
            Err(e) => return Err(api_err(e)),
        }
        // The pod goes by propagation too; deleting it now saves the garbage
        // collector's round trip, with a short grace (the agent has ended or been
        // stopped already).
        let selector = format!("{}={id}", spec::NAME_LABEL);
        let pod_params = DeleteParams {
            grace_period_seconds: Some(1),
            ..Default::default()
        };
        match self
            .pods()
            .delete_collection(&pod_params, &ListParams::default().labels(&selector))
            .await
        {
            Ok(_) => {}
            Err(e) if is_status(&e, 404) => {}
            Err(e) => return Err(api_err(e)),
        }
        match self
            .network_policies()
            .delete(id, &DeleteParams::default())
            .await
        {
            Ok(_) => {}
            Err(e) if is_status(&e, 404) => {}
            Err(e) => return Err(api_err(e)),
        }
        match self.secrets().delete(id, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(e) if is_status(&e, 404) => Ok(()),
            Err(e) => Err(api_err(e)),
        }
    }
}

/// The most bytes one archive fetched from a pod may hold (it goes to a temporary
/// file; what is brought home is bounded by the task's budget as it is read).
const MAX_FETCH_BYTES: u64 = 16 << 30;

impl ResultSource for KubeSandbox {
    /// Kubernetes lists no changes of a container: the whole workspace comes back and
    /// is compared with what was sent in.
    async fn changes(
        &self,
        _id: &str,
    ) -> Result<Option<Vec<(String, ship::changes::Kind)>>, SandboxError> {
        Ok(None)
    }

    async fn archive(
        &self,
        id: &str,
        path: &str,
    ) -> Result<Option<Box<dyn std::io::Read + Send>>, SandboxError> {
        let pod = self.pod_name(id).await?;
        Ok(transfer::archive(self, &pod, path, MAX_FETCH_BYTES)
            .await?
            .map(|f| Box::new(std::io::BufReader::new(f)) as Box<dyn std::io::Read + Send>))
    }
}

impl Sandbox for KubeSandbox {
    fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    /// A cluster's nodes pull or hold images themselves: what the image is shows only
    /// when a pod starts (a missing one fails the start with
    /// [`SandboxError::ImageUnavailable`]). The name stands for the id.
    async fn check_image(&self, image: &str) -> Result<String, SandboxError> {
        Ok(image.to_string())
    }

    async fn start(&self, spec: &SandboxSpec) -> Result<String, SandboxError> {
        let input = spec.workspace.work.join("ship-in.tar");
        ship::pack_whole_input(spec, &input).await?;
        let archive = tokio::fs::read(&input)
            .await
            .map_err(|e| SandboxError::Workspace(format!("{}: {e}", input.display())));
        let _ = std::fs::remove_file(&input);
        self.start_shipped(spec, &archive?).await
    }

    async fn find(&self, name: &str) -> Result<Option<String>, SandboxError> {
        KubeSandbox::find(self, name).await
    }

    async fn status(&self, id: &str) -> Result<SandboxStatus, SandboxError> {
        KubeSandbox::status(self, id).await
    }

    async fn wait(&self, id: &str) -> Result<(), SandboxError> {
        KubeSandbox::wait(self, id).await
    }

    async fn logs(&self, id: &str) -> Result<Vec<u8>, SandboxError> {
        KubeSandbox::logs(self, id).await
    }

    fn follow_logs(&self, id: &str) -> LogStream {
        KubeSandbox::follow_logs(self, id)
    }

    async fn env_values(
        &self,
        id: &str,
        names: &[String],
    ) -> Result<Vec<(String, String)>, SandboxError> {
        KubeSandbox::env_values(self, id, names).await
    }

    async fn stop(&self, id: &str) -> Result<(), SandboxError> {
        KubeSandbox::stop(self, id).await
    }

    async fn remove(&self, id: &str) -> Result<(), SandboxError> {
        KubeSandbox::remove(self, id).await
    }

    async fn egress_network(&self) -> Result<EgressNetwork, SandboxError> {
        Err(SandboxError::Cluster(
            "network = \"egress\" (the allowlist proxy) is not available on Kubernetes: \
             the proxy would have to run in the cluster, and a cluster without a CNI that \
             enforces NetworkPolicy cannot keep the pod from going around it. Use \
             network = \"none\""
                .into(),
        ))
    }

    /// The pod's volumes go with the pod: nothing else to release.
    async fn release_workspace(&self, _name: &str) -> Result<(), SandboxError> {
        Ok(())
    }

    async fn collect(&self, id: &str, spec: &CollectSpec) -> Result<Vec<String>, SandboxError> {
        if KubeSandbox::find(self, id).await?.is_none() || self.pod_of(id).await?.is_none() {
            // Deleted outside Handoff: nothing to bring back (the task says so).
            tracing::warn!(job = id, "the Job or its pod is gone; nothing to collect");
            return Ok(vec![]);
        }
        self.wait_keeper(id).await?;
        ship::collect(self, id, spec).await
    }
}

/// Where the agent of `pod` is.
fn pod_status(pod: &Pod) -> SandboxStatus {
    let status = pod.status.clone().unwrap_or_default();
    let agent = status
        .container_statuses
        .iter()
        .flatten()
        .find(|c| c.name == spec::AGENT);
    if let Some(state) = agent.and_then(|c| c.state.as_ref()) {
        if let Some(t) = &state.terminated {
            return SandboxStatus::Exited {
                code: t.exit_code as i64,
                oom_killed: t.reason.as_deref() == Some("OOMKilled"),
            };
        }
        if state.running.is_some() {
            return SandboxStatus::Running;
        }
    }
    // An init container ended badly, or the pod failed (evicted, deadline).
    let failed_init = status
        .init_container_statuses
        .iter()
        .flatten()
        .filter_map(|c| c.state.as_ref()?.terminated.as_ref())
        .find(|t| t.exit_code != 0);
    if let Some(t) = failed_init {
        return SandboxStatus::Exited {
            code: -1,
            oom_killed: t.reason.as_deref() == Some("OOMKilled"),
        };
    }
    if matches!(status.phase.as_deref(), Some("Failed") | Some("Succeeded")) {
        return SandboxStatus::Exited {
            code: -1,
            oom_killed: false,
        };
    }
    SandboxStatus::Running
}

fn agent_started(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .filter(|c| c.name == spec::AGENT)
        .filter_map(|c| c.state.as_ref())
        .any(|s| s.running.is_some() || s.terminated.is_some())
}

/// The agent's log, followed: waits for the agent container to start, then streams
/// from the apiserver until the container ends.
fn async_stream_follow(
    this: KubeSandbox,
    id: String,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, SandboxError>> + Send {
    enum Step {
        Waiting(KubeSandbox, String),
        Streaming(std::pin::Pin<Box<dyn futures_util::AsyncBufRead + Send>>),
        Done,
    }
    futures_util::stream::unfold(Step::Waiting(this, id), |step| async move {
        match step {
            Step::Done => None,
            Step::Waiting(this, id) => loop {
                let pod = match this.pod_of(&id).await {
                    Ok(Some(p)) => p,
                    Ok(None) => return None,
                    Err(e) => return Some((Err(e), Step::Done)),
                };
                if !agent_started(&pod) {
                    if pod_status(&pod) != SandboxStatus::Running {
                        return None;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                let params = LogParams {
                    container: Some(spec::AGENT.into()),
                    follow: true,
                    ..Default::default()
                };
                let name = pod.metadata.name.unwrap_or_default();
                match this.pods().log_stream(&name, &params).await {
                    Ok(reader) => {
                        let mut reader: std::pin::Pin<Box<dyn futures_util::AsyncBufRead + Send>> =
                            Box::pin(reader);
                        let chunk = read_chunk(&mut reader).await;
                        return match chunk {
                            Some(Ok(bytes)) => Some((Ok(bytes), Step::Streaming(reader))),
                            Some(Err(e)) => Some((Err(e), Step::Done)),
                            None => None,
                        };
                    }
                    Err(e) if is_status(&e, 400) || is_status(&e, 404) => return None,
                    Err(e) => return Some((Err(api_err(e)), Step::Done)),
                }
            },
            Step::Streaming(mut reader) => match read_chunk(&mut reader).await {
                Some(Ok(bytes)) => Some((Ok(bytes), Step::Streaming(reader))),
                Some(Err(e)) => Some((Err(e), Step::Done)),
                None => None,
            },
        }
    })
}

async fn read_chunk(
    reader: &mut std::pin::Pin<Box<dyn futures_util::AsyncBufRead + Send>>,
) -> Option<Result<Vec<u8>, SandboxError>> {
    match reader.fill_buf().await {
        Ok([]) => None,
        Ok(buf) => {
            let bytes = buf.to_vec();
            reader.as_mut().consume(bytes.len());
            Some(Ok(bytes))
        }
        Err(e) => Some(Err(SandboxError::Cluster(format!(
            "reading the agent's log: {e}"
        )))),
    }
}
