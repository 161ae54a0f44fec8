//! The sandbox a front-end uses: whichever engine `[engine]` names — a Docker-API
//! engine, or a Kubernetes cluster — behind one type, so that the CLI and the LSP
//! server are built once for both. The Docker arm adds nothing to the Docker path.

use std::sync::Arc;

use futures_util::StreamExt;

use super::endpoint::{EngineKind, EngineSettings};
use super::kube::{KubeSandbox, KubeTarget};
use super::{
    CollectSpec, DockerSandbox, EgressNetwork, LogStream, Sandbox, SandboxError, SandboxSpec,
    SandboxStatus,
};

#[derive(Clone)]
pub enum AnySandbox {
    Docker(DockerSandbox),
    Kube(LazyKube),
}

/// A Kubernetes sandbox made on first use: reading the kubeconfig is async, and a
/// front-end builds its sandbox before it has a runtime to spare (and many commands
/// never talk to the engine).
#[derive(Clone)]
pub struct LazyKube {
    target: KubeTarget,
    cell: Arc<tokio::sync::OnceCell<Result<KubeSandbox, String>>>,
}

impl LazyKube {
    pub fn new(target: KubeTarget) -> LazyKube {
        LazyKube {
            target,
            cell: Default::default(),
        }
    }

    pub fn target(&self) -> &KubeTarget {
        &self.target
    }

    /// The connected sandbox, or why there is none (an unreadable kubeconfig).
    pub async fn get(&self) -> Result<&KubeSandbox, SandboxError> {
        let made = self
            .cell
            .get_or_init(|| async {
                KubeSandbox::new(&self.target)
                    .await
                    .map_err(|e| e.to_string())
            })
            .await;
        made.as_ref().map_err(|message| SandboxError::Unreachable {
            endpoint: self.describe(),
            message: message.clone(),
        })
    }

    fn describe(&self) -> String {
        let mut s = "Kubernetes".to_string();
        if let Some(c) = &self.target.context {
            s.push_str(&format!(" context {c}"));
        }
        if let Some(n) = &self.target.namespace {
            s.push_str(&format!(" namespace {n}"));
        }
        s
    }
}

impl AnySandbox {
    /// The sandbox `settings` (a configuration's `[engine]`) name. Does no I/O.
    pub fn for_engine(settings: &EngineSettings) -> AnySandbox {
        match settings.kind {
            Some(EngineKind::Kubernetes) => AnySandbox::Kube(LazyKube::new(KubeTarget {
                kubeconfig: settings.kubeconfig.clone(),
                context: settings.context.clone(),
                namespace: settings.namespace.clone(),
                tools_image: settings.tools_image.clone(),
            })),
            _ => AnySandbox::Docker(DockerSandbox::for_engine(settings)),
        }
    }
}

impl From<DockerSandbox> for AnySandbox {
    fn from(d: DockerSandbox) -> AnySandbox {
        AnySandbox::Docker(d)
    }
}

/// Calls `$method` on whichever sandbox this is.
macro_rules! each {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            AnySandbox::Docker($s) => $call,
            AnySandbox::Kube(lazy) => {
                let $s = lazy.get().await?;
                $call
            }
        }
    };
}

impl Sandbox for AnySandbox {
    fn endpoint(&self) -> String {
        match self {
            AnySandbox::Docker(d) => d.endpoint(),
            AnySandbox::Kube(lazy) => match lazy.cell.get() {
                Some(Ok(k)) => k.endpoint(),
                _ => lazy.describe(),
            },
        }
    }

    async fn check_image(&self, image: &str) -> Result<String, SandboxError> {
        each!(self, s => s.check_image(image).await)
    }

    async fn start(&self, spec: &SandboxSpec) -> Result<String, SandboxError> {
        each!(self, s => s.start(spec).await)
    }

    async fn find(&self, name: &str) -> Result<Option<String>, SandboxError> {
        each!(self, s => Sandbox::find(s, name).await)
    }

    async fn status(&self, id: &str) -> Result<SandboxStatus, SandboxError> {
        each!(self, s => Sandbox::status(s, id).await)
    }

    async fn wait(&self, id: &str) -> Result<(), SandboxError> {
        each!(self, s => Sandbox::wait(s, id).await)
    }

    async fn logs(&self, id: &str) -> Result<Vec<u8>, SandboxError> {
        each!(self, s => Sandbox::logs(s, id).await)
    }

    fn follow_logs(&self, id: &str) -> LogStream {
        match self {
            AnySandbox::Docker(d) => d.follow_logs(id),
            AnySandbox::Kube(lazy) => {
                let lazy = lazy.clone();
                let id = id.to_string();
                Box::pin(
                    futures_util::stream::once(async move {
                        match lazy.get().await {
                            Ok(k) => Sandbox::follow_logs(k, &id),
                            Err(e) => Box::pin(futures_util::stream::once(async { Err(e) })),
                        }
                    })
                    .flatten(),
                )
            }
        }
    }

    async fn env_values(
        &self,
        id: &str,
        names: &[String],
    ) -> Result<Vec<(String, String)>, SandboxError> {
        each!(self, s => Sandbox::env_values(s, id, names).await)
    }

    async fn stop(&self, id: &str) -> Result<(), SandboxError> {
        each!(self, s => Sandbox::stop(s, id).await)
    }

    async fn remove(&self, id: &str) -> Result<(), SandboxError> {
        each!(self, s => Sandbox::remove(s, id).await)
    }

    async fn egress_network(&self) -> Result<EgressNetwork, SandboxError> {
        each!(self, s => s.egress_network().await)
    }

    async fn release_workspace(&self, name: &str) -> Result<(), SandboxError> {
        each!(self, s => s.release_workspace(name).await)
    }

    async fn collect(&self, id: &str, spec: &CollectSpec) -> Result<Vec<String>, SandboxError> {
        each!(self, s => s.collect(id, spec).await)
    }

    async fn written_bytes(&self, id: &str) -> Result<Option<u64>, SandboxError> {
        each!(self, s => s.written_bytes(id).await)
    }
}
