//! A test-only [`Sandbox`] with no containers, so the real engine runs every LSP test
//! in milliseconds: "starting" a container runs an agent written in Rust at once —
//! what it writes goes to the workspace's upper folder, exactly where a real agent's
//! writes land through the overlay — and the container then reports that it exited
//! or keeps "running" until [`FakeSandbox::finish_all`].
//!
//! Deliberately small and in one file: the `Sandbox` trait is being reshaped, and this
//! is the one place in `lsp/` that implements it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::sandbox::{EgressNetwork, LogStream, Sandbox, SandboxError, SandboxSpec, SandboxStatus};

/// What a fake agent does once it has edited the workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentRun {
    /// The container ends at once with this exit code.
    Exit(i64),
    /// The container runs until the test finishes it.
    KeepRunning,
}

/// The agent: given the folder its writes go to (the overlay's upper folder) and the
/// turn's prompt, it writes files.
pub type Agent = Arc<dyn Fn(&Path, &str) -> AgentRun + Send + Sync>;

#[derive(Clone)]
pub struct FakeSandbox {
    agent: Agent,
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    /// By container id.
    containers: HashMap<String, Container>,
    next_id: u64,
    /// Every call fails as if the Docker engine were down.
    unreachable: bool,
}

struct Container {
    name: String,
    status: SandboxStatus,
    logs: Vec<u8>,
}

impl FakeSandbox {
    pub fn new(agent: impl Fn(&Path, &str) -> AgentRun + Send + Sync + 'static) -> FakeSandbox {
        FakeSandbox {
            agent: Arc::new(agent),
            state: Arc::default(),
        }
    }

    /// Makes every later call fail with [`SandboxError::Unreachable`] (or work again).
    pub fn set_unreachable(&self, down: bool) {
        self.state.lock().unwrap().unreachable = down;
    }

    fn up(&self) -> Result<std::sync::MutexGuard<'_, State>, SandboxError> {
        let state = self.state.lock().unwrap();
        if state.unreachable {
            return Err(SandboxError::Unreachable {
                endpoint: self.endpoint(),
                message: "the fake engine is down".into(),
            });
        }
        Ok(state)
    }
}

impl Sandbox for FakeSandbox {
    fn endpoint(&self) -> String {
        "fake://sandbox".into()
    }

    async fn check_image(&self, _image: &str) -> Result<(), SandboxError> {
        self.up().map(drop)
    }

    async fn start(&self, spec: &SandboxSpec) -> Result<String, SandboxError> {
        drop(self.up()?);
        let prompt = spec
            .env
            .iter()
            .find(|(k, _)| k == "HANDOFF_PROMPT")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let run = (self.agent)(&spec.workspace.upper, &prompt);
        let mut state = self.up()?;
        if state.containers.values().any(|c| c.name == spec.name) {
            return Err(SandboxError::NameConflict {
                name: spec.name.clone(),
            });
        }
        state.next_id += 1;
        let id = format!("fake-{}", state.next_id);
        let status = match run {
            AgentRun::Exit(code) => SandboxStatus::Exited {
                code,
                oom_killed: false,
            },
            AgentRun::KeepRunning => SandboxStatus::Running,
        };
        state.containers.insert(
            id.clone(),
            Container {
                name: spec.name.clone(),
                status,
                logs: format!("fake agent ran: {prompt}\n").into_bytes(),
            },
        );
        Ok(id)
    }

    async fn find(&self, name: &str) -> Result<Option<String>, SandboxError> {
        Ok(self
            .up()?
            .containers
            .iter()
            .find(|(_, c)| c.name == name)
            .map(|(id, _)| id.clone()))
    }

    async fn status(&self, id: &str) -> Result<SandboxStatus, SandboxError> {
        Ok(self
            .up()?
            .containers
            .get(id)
            .map_or(SandboxStatus::Missing, |c| c.status))
    }

    async fn wait(&self, _id: &str) -> Result<(), SandboxError> {
        self.up().map(drop)
    }

    async fn logs(&self, id: &str) -> Result<Vec<u8>, SandboxError> {
        Ok(self
            .up()?
            .containers
            .get(id)
            .map(|c| c.logs.clone())
            .unwrap_or_default())
    }

    fn follow_logs(&self, id: &str) -> LogStream {
        let logs = self
            .state
            .lock()
            .unwrap()
            .containers
            .get(id)
            .map(|c| c.logs.clone());
        Box::pin(futures_util::stream::iter(logs.map(Ok)))
    }

    async fn env_values(
        &self,
        _id: &str,
        _names: &[String],
    ) -> Result<Vec<(String, String)>, SandboxError> {
        Ok(vec![])
    }

    async fn stop(&self, id: &str) -> Result<(), SandboxError> {
        if let Some(c) = self.up()?.containers.get_mut(id) {
            c.status = SandboxStatus::Exited {
                code: 137,
                oom_killed: false,
            };
        }
        Ok(())
    }

    async fn remove(&self, id: &str) -> Result<(), SandboxError> {
        self.up()?.containers.remove(id);
        Ok(())
    }

    async fn egress_network(&self) -> Result<EgressNetwork, SandboxError> {
        Err(SandboxError::Engine(
            "the fake sandbox has no network".into(),
        ))
    }

    async fn release_workspace(&self, _name: &str) -> Result<(), SandboxError> {
        self.up().map(drop)
    }
}
