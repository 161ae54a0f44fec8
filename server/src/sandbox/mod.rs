//! Where agents run. One trait, [`Sandbox`], is the seam between the engine and a
//! container runtime: a Docker-API engine through bollard — the local one, where the
//! workspace is an overlay of host folders, or one that shares no disk with Handoff
//! (a remote engine, Podman, or the local one told so), where the workspace is
//! *shipped*: copied in as archives and its changes copied back into the same host
//! folders ([`ship`]), so that the engine's finalize reads them as it reads an
//! overlay's upper folder. Or a Kubernetes cluster ([`kube`]): a Job per turn, the
//! workspace shipped through the same [`ship`] code, in and out through `exec`.
//! [`AnySandbox`] is whichever of the two `[engine]` names.
//!
//! A sandbox knows containers, images and logs. It knows nothing of tasks' states,
//! git, or front-ends.

pub mod any;
pub mod docker;
pub mod endpoint;
pub mod kube;
pub mod ship;
mod ssh;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use futures_util::Stream;

pub use any::AnySandbox;
pub use docker::DockerSandbox;

/// The most of an agent's output read back per turn.
pub const MAX_LOG_BYTES: usize = 64 << 20;

/// Everything needed to start one agent.
#[derive(Debug, Clone)]
pub struct SandboxSpec {
    /// Unique per repository and task; a second start under the same name fails,
    /// which guards against two front-ends starting the same task.
    pub name: String,
    pub image: String,
    pub argv: Vec<String>,
    /// Environment, including passed-through secrets. Never logged.
    pub env: Vec<(String, String)>,
    pub labels: BTreeMap<String, String>,
    pub uid: u32,
    pub gid: u32,
    /// The agent's working copy, an overlay of host folders; appears as `/workspace`.
    pub workspace: OverlaySpec,
    /// The agent's HOME on the host, kept between turns so that a follow-up can
    /// resume the agent's session; appears at [`docker::HOME_IN_SANDBOX`].
    pub home: PathBuf,
    /// A folder for what Handoff's runner reports (setup and check results); appears
    /// at [`crate::agents::OUT_DIR_IN_SANDBOX`].
    pub out_dir: PathBuf,
    /// Tool caches shared by the repository's tasks with the same lockfiles; appears
    /// at [`crate::agents::CACHE_DIR_IN_SANDBOX`].
    pub cache_dir: Option<PathBuf>,
    /// The tool cache is mounted read-only (the agent's phase): only setup fills it.
    pub cache_read_only: bool,
    /// The prompt file on the host; appears at [`crate::agents::PROMPT_FILE_IN_SANDBOX`].
    pub prompt_file: PathBuf,
    pub network: SandboxNetwork,
    pub memory_bytes: Option<i64>,
    pub cpus: Option<f64>,
    pub pids: Option<i64>,
}

/// A workspace made of layers: read-only `lowers` (topmost first: the task's start
/// layer, then the shared base checkout), and `upper`, where everything the agent
/// writes lands — the only folder finalizing reads.
#[derive(Debug, Clone)]
pub struct OverlaySpec {
    pub lowers: Vec<PathBuf>,
    pub upper: PathBuf,
    /// overlayfs's scratch folder, on the same file system as `upper`. A shipped
    /// workspace keeps there what it sent in (to tell the agent's changes from it).
    pub work: PathBuf,
    /// What the bottom lower holds, by content (the base checkout's commit): a
    /// shipped workspace caches it on the engine under this name.
    pub base_key: Option<String>,
}

/// Where a shipped workspace's results go once its container has ended: the same
/// host folders an overlay workspace writes into. See [`Sandbox::collect`].
#[derive(Debug, Clone)]
pub struct CollectSpec {
    /// Emptied, then given what the agent changed under `/workspace`, marked as
    /// overlayfs marks an upper folder (whiteouts for deletions).
    pub upper: PathBuf,
    /// The turn's scratch folder (`OverlaySpec::work`), where the start left what it
    /// sent in.
    pub work: PathBuf,
    /// Replaced by the container's HOME.
    pub home: PathBuf,
    /// Replaced by the container's results folder.
    pub out_dir: PathBuf,
    /// Replaced by the container's tool cache (the setup's phase only: the agent's
    /// cache is read-only).
    pub cache_dir: Option<PathBuf>,
    /// The owner of what is written into `home`, `out_dir` and `cache_dir`.
    pub uid: u32,
    pub gid: u32,
    /// The most bytes of file content brought back, all folders together.
    pub max_bytes: u64,
}

/// The network a container is attached to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SandboxNetwork {
    None,
    /// The internal network where Handoff's egress proxy is the only way out.
    Egress(EgressNetwork),
    Bridge,
    Host,
}

/// An internal network of the engine: containers on it reach the gateway address
/// (where the host's egress proxy listens) and nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressNetwork {
    pub name: String,
    pub gateway: std::net::IpAddr,
}

/// Where a started agent is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxStatus {
    Running,
    Exited {
        code: i64,
        oom_killed: bool,
    },
    /// No such container (removed outside Handoff, or never created).
    Missing,
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(
        "cannot reach the Docker engine at {endpoint}: {message}. Start Docker (e.g. `sudo systemctl start docker` or `dockerd`), or set DOCKER_HOST"
    )]
    Unreachable { endpoint: String, message: String },
    #[error(
        "image `{image}` is not in the Docker engine at {endpoint}. Build or pull it (`docker pull {image}`, or `handoff image build PROFILE` for the built-in agents and for images of the repository's own .handoff/Dockerfile or devcontainer.json), or set `image` of the agent profile in .handoff.toml"
    )]
    ImageMissing { image: String, endpoint: String },
    /// A cluster's node cannot get an image (Kubernetes pulls; Handoff does not).
    #[error(
        "image `{image}` cannot be had on the cluster at {endpoint} ({reason}): push it to a registry the nodes pull from, or load it on the nodes (`docker save {image} | …`). Handoff's own containers in each pod run `tools_image` of [engine] (unset: busybox:1.36-musl)"
    )]
    ImageUnavailable {
        image: String,
        endpoint: String,
        reason: String,
    },
    #[error("a container named {name} already exists (another front-end started this task)")]
    NameConflict { name: String },
    #[error("Docker: {0}")]
    Engine(String),
    /// What a Kubernetes cluster said or did (the Docker wording of [`Self::Engine`]
    /// would mislead there).
    #[error("Kubernetes: {0}")]
    Cluster(String),
    #[error("shipping the workspace: {0}")]
    Workspace(String),
    /// What came back from a shipped workspace broke a rule (a name leaving its
    /// folder, a link to write through, over a limit): it is not brought home, and
    /// asking again would get the same answer.
    #[error("the agent's work was refused as it came back from the engine: {0}")]
    ResultRefused(String),
}

pub type LogStream = Pin<Box<dyn Stream<Item = Result<Vec<u8>, SandboxError>> + Send>>;

/// A container runtime. Implementations must be cheap to clone or share.
pub trait Sandbox: Send + Sync + 'static {
    /// Where the runtime is, for messages.
    fn endpoint(&self) -> String;

    /// Fails with [`SandboxError::ImageMissing`] when the image is not present.
    fn check_image(&self, image: &str)
        -> impl Future<Output = Result<String, SandboxError>> + Send;

    /// Creates and starts the agent; returns its container id.
    fn start(
        &self,
        spec: &SandboxSpec,
    ) -> impl Future<Output = Result<String, SandboxError>> + Send;

    /// The id of the container named `name`, if there is one.
    fn find(&self, name: &str)
        -> impl Future<Output = Result<Option<String>, SandboxError>> + Send;

    fn status(&self, id: &str) -> impl Future<Output = Result<SandboxStatus, SandboxError>> + Send;

    /// Resolves when the container is no longer running.
    fn wait(&self, id: &str) -> impl Future<Output = Result<(), SandboxError>> + Send;

    /// All output so far (stdout and stderr interleaved as they came).
    fn logs(&self, id: &str) -> impl Future<Output = Result<Vec<u8>, SandboxError>> + Send;

    /// Output from the start, then live until the container ends.
    fn follow_logs(&self, id: &str) -> LogStream;

    /// Values of the named variables in the container's environment, for redaction.
    fn env_values(
        &self,
        id: &str,
        names: &[String],
    ) -> impl Future<Output = Result<Vec<(String, String)>, SandboxError>> + Send;

    /// Stops the agent (the container stays for its logs and exit status).
    fn stop(&self, id: &str) -> impl Future<Output = Result<(), SandboxError>> + Send;

    /// Removes the container. Removing a missing one is not an error.
    fn remove(&self, id: &str) -> impl Future<Output = Result<(), SandboxError>> + Send;

    /// The internal network for egress through the proxy, created when missing.
    fn egress_network(&self) -> impl Future<Output = Result<EgressNetwork, SandboxError>> + Send;

    /// Releases the workspace of the container named `name` (after the container is
    /// removed). Releasing one that is gone is not an error.
    fn release_workspace(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<(), SandboxError>> + Send;

    /// Brings the results of the ended container `id` into the host folders of
    /// `spec`, when its workspace was shipped; nothing to do for an overlay (its
    /// folders are the host's own). Called before anything reads those folders, and
    /// again after a failure (it starts over each time). What comes back is read as
    /// hostile input. Returns the files left in the container because bringing them
    /// would have passed `spec.max_bytes` (workspace paths as they are, others
    /// under their folder in the container).
    fn collect(
        &self,
        id: &str,
        spec: &CollectSpec,
    ) -> impl Future<Output = Result<Vec<String>, SandboxError>> + Send {
        let _ = (id, spec);
        async { Ok(vec![]) }
    }

    /// Bytes the running container `id` has written where the host does not see them
    /// (a shipped workspace's changes), for the disk limit; `None` when the host's own
    /// folders hold everything.
    fn written_bytes(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<u64>, SandboxError>> + Send {
        let _ = id;
        async { Ok(None) }
    }
}
