//! The repository the tests work in: greet.py with two TODOs, a configuration whose
//! default agent is the fake one, and tasks driven through the real engine on the
//! [`FakeSandbox`].

use std::path::Path;

use serde_json::{json, Value};

use super::fake_sandbox::{AgentRun, FakeSandbox};
use crate::engine::task::{Origin, Task, TaskId, TaskState};
use crate::engine::{Engine, NewTask};

/// The repository's configuration: the fake agent.
pub const CONFIG: &str =
    "default_agent = \"fake\"\n[agents.fake]\nimage = \"fake:latest\"\ncommand = [\"true\"]\n";

/// `greet.py` as the user has it: two TODOs.
pub const GREET: &str = "def greet(name):\n    # TODO: greet loudly\n    return \"hello, \" + name\n\n\ndef farewell(name):\n    # TODO: say goodbye properly\n    return \"bye, \" + name\n";

/// The agent's result for "greet loudly": two hunks in greet.py.
pub const GREET_DONE: &str = "def greet(name):\n    return (\"hello, \" + name).upper()\n\n\ndef farewell(name):\n    # TODO: say goodbye properly\n    return \"goodbye, \" + name\n";

/// What the agent asked to "write notes" creates, in folders that do not exist yet.
pub const NOTES: &str = "# Notes\n\n- greet() shouts now.\n";

/// The fake agent of the tests: "greet loudly" edits greet.py and ends; "write notes"
/// creates docs/notes/NOTES.md; "sleep" runs until the test ends it; anything else
/// ends without a change.
fn agent(workspace: &Path, prompt: &str) -> AgentRun {
    if prompt.contains("tweak the config") {
        std::fs::write(
            workspace.join(".handoff.toml"),
            format!("{CONFIG}# tweaked by the agent\n"),
        )
        .unwrap();
        std::fs::write(workspace.join("greet.py"), GREET_DONE).unwrap();
        AgentRun::Exit(0)
    } else if prompt.contains("write notes") {
        let dir = workspace.join("docs/notes");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("NOTES.md"), NOTES).unwrap();
        AgentRun::Exit(0)
    } else if prompt.contains("greet loudly") {
        std::fs::write(workspace.join("greet.py"), GREET_DONE).unwrap();
        AgentRun::Exit(0)
    } else if prompt.contains("say goodbye properly") || prompt.contains("sleep") {
        AgentRun::KeepRunning
    } else {
        AgentRun::Exit(0)
    }
}

/// A repository with greet.py (and a configuration whose default agent is the fake).
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub fake: FakeSandbox,
}

impl Fixture {
    pub fn new() -> Fixture {
        crate::git::init();
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init(dir.path()).unwrap();
        std::fs::write(dir.path().join("greet.py"), GREET).unwrap();
        std::fs::write(dir.path().join(".handoff.toml"), CONFIG).unwrap();
        let mut index = repo.index().unwrap();
        index
            .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
            .unwrap();
        index.write().unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = git2::Signature::now("t", "t@example.com").unwrap();
        repo.commit(Some("HEAD"), &sig, &sig, "initial", &tree, &[])
            .unwrap();
        // The configuration names the fake agent: trusted, as the user would.
        crate::trust::trust_for_tests(dir.path());
        Fixture {
            dir,
            fake: FakeSandbox::new(agent),
        }
    }

    /// The same repository, its configuration never trusted (as when just cloned).
    pub fn untrusted() -> Fixture {
        let fixture = Fixture::new();
        crate::trust::untrust_for_tests(fixture.path());
        fixture
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn engine(&self) -> Engine<FakeSandbox> {
        Engine::open(self.path(), self.fake.clone()).unwrap()
    }

    /// Starts a task delegated from `line` of greet.py through the engine and drives
    /// it until its fake agent has ended (or runs, for agents that keep running).
    pub async fn task(&self, prompt: &str, line: u32) -> Task {
        let engine = self.engine();
        let task = engine
            .create_task(NewTask {
                prompt: prompt.into(),
                title: Some(prompt.into()),
                agent: None,
                origin: Some(Origin {
                    path: "greet.py".into(),
                    line,
                }),
                warm: false,
            })
            .await
            .unwrap();
        engine.tick().await.unwrap();
        engine.tick().await.unwrap();
        engine.get(task.id).unwrap()
    }

    /// Task #1 done with two hunks in greet.py (from line 1), task #2 running (from
    /// line 6).
    pub async fn with_tasks() -> Fixture {
        let fixture = Fixture::new();
        let done = fixture.task("greet loudly", 1).await;
        assert_eq!(done.state, TaskState::Done, "{done:#?}");
        let running = fixture.task("say goodbye properly", 6).await;
        assert_eq!(running.state, TaskState::Running, "{running:#?}");
        fixture
    }

    /// The decisions recorded for task `id` in greet.py, as `hunk → "accepted"|"rejected"`.
    pub fn decisions(&self, id: u64) -> Value {
        let review = self.engine().review(TaskId(id)).unwrap();
        json!(review.resolved.get("greet.py"))
    }
}
