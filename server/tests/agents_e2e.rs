//! The real agent CLIs end to end: Claude Code and Codex, installed from the npm
//! registry into images built by `handoff image build`, run by Handoff in Docker
//! against a scripted model server on 127.0.0.1 (tests/agents/model_server.py; the
//! containers use network `host` to reach it, nothing leaves the machine).
//!
//! Each test checks what the user sees: the branch and its files, the transcript
//! `handoff logs` prints, a follow-up that resumes the same session, and `handoff
//! pull` placing the session where the local CLI resumes it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// A secret that must never reach records, logs or transcripts.
const API_KEY: &str = "sk-ant-test-d2c9f0a4e1b7";
const CODEX_KEY: &str = "sk-mock-test-77a1c3e5f9";

/// `handoff image build PROFILE` in an empty repository: the image tag it prints.
/// Built once per test process; builds are serialised (they share the base image).
fn agent_image(profile: &str) -> String {
    static BUILDS: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());
    let mut built = BUILDS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, tag)) = built.iter().find(|(p, _)| p == profile) {
        return tag.clone();
    }
    let dir = tempfile::tempdir().unwrap();
    let git = Command::new("git")
        .args(["init", "-q"])
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert!(git.success());
    let started = Instant::now();
    let out = handoff_in(dir.path(), &["image", "build", profile], &[]);
    assert!(
        out.status.success(),
        "`handoff image build {profile}` failed (it needs the Docker engine, mmdebstrap and \
         the npm registry or cache; see scripts/setup.sh):\n{}",
        stderr(&out)
    );
    let tag = stdout(&out)
        .trim()
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    assert!(!tag.is_empty(), "no image tag printed:\n{}", stderr(&out));
    eprintln!("image for {profile}: {tag} ({:.0?})", started.elapsed());
    built.push((profile.to_string(), tag.clone()));
    tag
}

/// The scripted model server, on a free port of 127.0.0.1.
struct ModelServer {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl ModelServer {
    fn start() -> ModelServer {
        let dir = tempfile::tempdir().unwrap();
        let portfile = dir.path().join("port");
        let log = dir.path().join("requests.jsonl");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/agents/model_server.py");
        let child = Command::new("python3")
            .arg(&script)
            .arg("--portfile")
            .arg(&portfile)
            .arg("--log")
            .arg(&log)
            .stdout(Stdio::null())
            .spawn()
            .expect("python3 runs the scripted model server (scripts/setup.sh installs it)");
        let deadline = Instant::now() + Duration::from_secs(30);
        let port = loop {
            if let Ok(text) = std::fs::read_to_string(&portfile) {
                break text.trim().parse::<u16>().unwrap();
            }
            assert!(Instant::now() < deadline, "the model server did not start");
            std::thread::sleep(Duration::from_millis(50));
        };
        ModelServer {
            child,
            port,
            log,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every request the server answered, oldest first.
    fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for ModelServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `handoff ARGS` in `repo` with exactly the credentials given (the caller's own
/// agent variables are removed first, so a developer's key never leaks in).
fn handoff_with(repo: &Repo, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(handoff_bin());
    cmd.args(args).current_dir(repo.path());
    cmd.env("XDG_CONFIG_HOME", repo.path().join(".no-user-config"));
    for name in [
        "ANTHROPIC_API_KEY",
        "CLAUDE_CODE_OAUTH_TOKEN",
        "ANTHROPIC_BASE_URL",
        "OPENAI_API_KEY",
        "CODEX_API_KEY",
        "OPENAI_BASE_URL",
        "MOCK_API_KEY",
    ] {
        cmd.env_remove(name);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn json_of(out: &Output, what: &str) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{what} printed no JSON ({e}):\nstdout: {}\nstderr: {}",
            stdout(out),
            stderr(out)
        )
    })
}

/// Fails if `needle` appears in any file under `dir`.
fn assert_nowhere_under(dir: &Path, needle: &str) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            assert_nowhere_under(&path, needle);
        } else if let Ok(bytes) = std::fs::read(&path) {
            assert!(
                !String::from_utf8_lossy(&bytes).contains(needle),
                "the secret appears in {}",
                path.display()
            );
        }
    }
}

/// `handoff run --agent AGENT --wait --json PROMPT`: the final record, and the output.
fn run_agent(repo: &Repo, agent: &str, prompt: &str, env: &[(&str, &str)]) -> (Value, Output) {
    let out = handoff_with(
        repo,
        &["run", "--agent", agent, "--wait", "--json", prompt],
        env,
    );
    (json_of(&out, "handoff run"), out)
}

/// A repository whose `claude` profile runs the real CLI (image `handoff image build
/// claude`) on its default network, and a model server for it; `extra` goes into the
/// profile.
struct Claude {
    image: String,
    server: ModelServer,
    repo: Repo,
    url: String,
}

impl Claude {
    fn new(files: &[(&str, &str)], extra: &str) -> Claude {
        let image = agent_image("claude");
        let server = ModelServer::start();
        let repo = Repo::new(
            files,
            // The default network, `egress`: the proxy carries the CLI's requests to the
            // model server and adds the key, which never enters the container.
            &format!("[agents.claude]\nimage = \"{image}\"\n{extra}"),
        );
        let url = server.url();
        Claude {
            image,
            server,
            repo,
            url,
        }
    }

    /// The environment a user would have: the server's address and a key.
    fn env(&self) -> [(&str, &str); 2] {
        [
            ("ANTHROPIC_BASE_URL", self.url.as_str()),
            ("ANTHROPIC_API_KEY", API_KEY),
        ]
    }
}

#[test]
fn claude_code_edits_a_file_then_a_reply_resumes_its_session_and_pull_hands_it_over() {
    let claude = Claude::new(&[("README.md", "# demo\n")], "memory = \"2g\"\n");
    let (image, server, repo, url) = (&claude.image, &claude.server, &claude.repo, &claude.url);
    let env = claude.env();

    // The first turn: the real CLI calls the Write tool, the file lands on the branch.
    let (task, out) = run_agent(
        repo,
        "claude",
        "create hello.txt containing hi from claude",
        &env,
    );
    assert_eq!(task["state"], "done", "{task:#}\n{}", stderr(&out));
    let branch = task["branch"].as_str().unwrap().to_string();
    assert_eq!(repo.show_bytes(&branch, "hello.txt"), b"hi from claude\n");
    assert_eq!(task["files_changed"], serde_json::json!(["hello.txt"]));
    let session = task["session_id"]
        .as_str()
        .expect("a session id")
        .to_string();
    assert_eq!(session.len(), 36, "a UUID: {session}");

    // The transcript, as `handoff logs` renders it, and the raw stream.
    let logs = stdout(&handoff_with(repo, &["logs", "1"], &env));
    assert!(logs.contains("▸ Write hello.txt"), "{logs}");
    assert!(logs.contains("Done: created hello.txt"), "{logs}");
    assert!(logs.contains(&session), "{logs}");
    let raw = stdout(&handoff_with(repo, &["logs", "1", "--raw"], &env));
    assert!(
        raw.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .any(|v| v["type"] == "result" && v["session_id"] == session.as_str()),
        "{raw}"
    );

    // A follow-up: same branch, same session, the model sees the first turn.
    let out = handoff_with(
        repo,
        &[
            "reply",
            "1",
            "--wait",
            "--json",
            "now create reply.txt containing second turn",
        ],
        &env,
    );
    let task = json_of(&out, "handoff reply");
    assert_eq!(task["state"], "done", "{task:#}\n{}", stderr(&out));
    assert_eq!(task["session_id"], session.as_str());
    assert_eq!(task["turns"].as_array().unwrap().len(), 2);
    assert_eq!(
        files_on(repo, &branch),
        ["README.md", "hello.txt", "reply.txt"]
    );
    assert_eq!(repo.show_bytes(&branch, "reply.txt"), b"second turn\n");
    let resumed = server
        .requests()
        .into_iter()
        .rev()
        .find(|r| r["path"] == "/v1/messages")
        .unwrap();
    let history = resumed["body"]["messages"].to_string();
    assert!(
        history.contains("hi from claude") && history.contains("second turn"),
        "the follow-up request carries the first turn: {history}"
    );
    let logs = stdout(&handoff_with(repo, &["logs", "1"], &env));
    assert!(
        logs.contains("turn 2 (follow-up): now create reply.txt"),
        "{logs}"
    );
    assert!(
        logs.contains("▸ Write hello.txt") && logs.contains("▸ Write reply.txt"),
        "{logs}"
    );

    // Pull: a worktree of the branch, the session where a local `claude` finds it.
    let home = tempfile::tempdir().unwrap();
    let out = handoff_with(
        repo,
        &["pull", "1"],
        &[("HOME", home.path().to_str().unwrap())],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    let worktree = repo
        .path()
        .parent()
        .unwrap()
        .join(format!(
            "{}.handoff-1",
            repo.path().file_name().unwrap().to_str().unwrap()
        ))
        .canonicalize()
        .unwrap();
    assert!(
        printed.contains(&format!(
            "cd {} && claude --resume {session}",
            worktree.display()
        )),
        "{printed}"
    );
    assert_eq!(
        std::fs::read_to_string(worktree.join("reply.txt")).unwrap(),
        "second turn\n"
    );
    let placed = home
        .path()
        .join(".claude/projects")
        .join(handoff::engine::claude_project_dir(
            &worktree.display().to_string(),
        ))
        .join(format!("{session}.jsonl"));
    assert!(placed.is_file(), "{printed}");

    // And the real CLI resumes it there: same session, the history, a new file.
    let resume = Command::new("docker")
        .args([
            "run",
            "--rm",
            "--pull",
            "never",
            "--network",
            "host",
            "-e",
            "IS_SANDBOX=1",
        ])
        .args(["-e", "HOME=/h", "-e", &format!("ANTHROPIC_BASE_URL={url}")])
        .args([
            "-e",
            "ANTHROPIC_API_KEY=local-key",
            "-e",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1",
        ])
        .arg("-v")
        .arg(format!("{}:/h", home.path().display()))
        .arg("-v")
        .arg(format!("{0}:{0}", worktree.display()))
        .arg("-v")
        .arg(format!(
            "{0}:{0}",
            repo.git_dir().canonicalize().unwrap().display()
        ))
        .arg("-w")
        .arg(&worktree)
        .arg(image)
        .args([
            "claude",
            "-p",
            "create local.txt containing continued locally",
            "--resume",
            &session,
        ])
        .args([
            "--output-format",
            "stream-json",
            "--verbose",
            "--dangerously-skip-permissions",
        ])
        .output()
        .unwrap();
    let stream = String::from_utf8_lossy(&resume.stdout);
    assert!(
        resume.status.success(),
        "{stream}\n{}",
        String::from_utf8_lossy(&resume.stderr)
    );
    let result: Value = stream
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["type"] == "result")
        .expect("a result line");
    assert_eq!(result["session_id"], session.as_str(), "{stream}");
    assert_eq!(
        std::fs::read_to_string(worktree.join("local.txt")).unwrap(),
        "continued locally\n"
    );
    let _ = std::fs::remove_dir_all(&worktree);

    // The key was in the agent's environment, never in what Handoff keeps.
    assert_nowhere_under(&repo.git_dir().join("handoff"), API_KEY);
    assert!(containers_of(repo).is_empty());
}

#[test]
fn following_a_running_claude_task_renders_its_transcript_as_it_comes() {
    let claude = Claude::new(&[("a.txt", "a\n")], "");
    let (repo, env) = (&claude.repo, claude.env());
    let out = handoff_with(
        repo,
        &[
            "run",
            "--agent",
            "claude",
            "create slow.txt containing written slowly",
        ],
        &env,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let started = Instant::now();
    let out = handoff_with(repo, &["logs", "1", "-f"], &env);
    let followed = stdout(&out);
    // It waited for the agent (the server answers each request after 2 s)...
    assert!(started.elapsed() >= Duration::from_secs(2), "{followed}");
    // ...and printed the transcript, not the JSON stream.
    assert!(followed.contains("▸ Write slow.txt"), "{followed}");
    assert!(followed.contains("Done: created slow.txt"), "{followed}");
    assert!(!followed.contains("{\"type\""), "{followed}");
    let task = repo.task(1);
    assert_eq!(task["state"], "done", "{task:#}");
    assert!(
        followed.contains(task["session_id"].as_str().unwrap()),
        "{followed}"
    );
}

fn codex_config(port: u16) -> String {
    let flags = format!(
        r#""-c", 'model="gpt-5.5"', "-c", 'model_provider="mock"',
  "-c", 'model_providers.mock={{name="Mock", base_url="http://127.0.0.1:{port}/v1", env_key="MOCK_API_KEY", wire_api="responses", request_max_retries=0, stream_max_retries=0}}',
  "-c", "check_for_update_on_startup=false", "-c", "analytics.enabled=false",
  "-c", "feedback.enabled=false", "-c", 'otel.exporter="none"',
  "--disable", "plugins", "--disable", "unbounded_connection_retries","#
    );
    format!(
        r#"[agents.codex]
image = "{image}"
network = "host"
memory = "2g"
env = ["MOCK_API_KEY"]
credentials = ["MOCK_API_KEY"]
command = ["codex", "exec", "--json", "--dangerously-bypass-approvals-and-sandbox",
  {flags} "{{prompt}}"]
resume_command = ["codex", "exec", "--json", "--dangerously-bypass-approvals-and-sandbox",
  {flags} "resume", "{{session}}", "{{prompt}}"]
"#,
        image = agent_image("codex")
    )
}

#[test]
fn codex_edits_a_file_then_a_reply_resumes_its_thread_and_pull_hands_it_over() {
    let server = ModelServer::start();
    let repo = Repo::new(&[("README.md", "# demo\n")], &codex_config(server.port));
    repo.write_user_config("allow_host_network = true\n");
    let env = [("MOCK_API_KEY", CODEX_KEY)];

    let (task, out) = run_agent(
        &repo,
        "codex",
        "create hello.txt containing hi from codex",
        &env,
    );
    assert_eq!(task["state"], "done", "{task:#}\n{}", stderr(&out));
    let branch = task["branch"].as_str().unwrap().to_string();
    assert_eq!(repo.show_bytes(&branch, "hello.txt"), b"hi from codex\n");
    let thread = task["session_id"]
        .as_str()
        .expect("a thread id")
        .to_string();

    let logs = stdout(&handoff_with(&repo, &["logs", "1"], &env));
    assert!(
        logs.lines()
            .any(|l| l.starts_with("▸ shell:") && l.contains("> hello.txt")),
        "{logs}"
    );
    assert!(logs.contains("Done: created hello.txt"), "{logs}");
    assert!(logs.contains(&thread), "{logs}");

    let out = handoff_with(
        &repo,
        &[
            "reply",
            "1",
            "--wait",
            "--json",
            "create two.txt containing again",
        ],
        &env,
    );
    let task = json_of(&out, "handoff reply");
    assert_eq!(task["state"], "done", "{task:#}\n{}", stderr(&out));
    assert_eq!(task["session_id"], thread.as_str());
    assert_eq!(
        files_on(&repo, &branch),
        ["README.md", "hello.txt", "two.txt"]
    );
    let last = server
        .requests()
        .into_iter()
        .rev()
        .find(|r| r["path"] == "/v1/responses")
        .unwrap();
    let input = last["body"]["input"].to_string();
    assert!(
        input.contains("hi from codex") && input.contains("containing again"),
        "the follow-up request carries the first turn: {input}"
    );

    let home = tempfile::tempdir().unwrap();
    let out = handoff_with(
        &repo,
        &["pull", "1", "--json"],
        &[("HOME", home.path().to_str().unwrap())],
    );
    let pulled = json_of(&out, "handoff pull");
    let worktree = PathBuf::from(pulled["worktree"].as_str().unwrap());
    assert_eq!(
        std::fs::read_to_string(worktree.join("two.txt")).unwrap(),
        "again\n"
    );
    let file = PathBuf::from(pulled["session_file"].as_str().unwrap());
    assert!(
        file.starts_with(home.path().join(".codex/sessions")),
        "{pulled:#}"
    );
    assert!(file.to_str().unwrap().ends_with(&format!("{thread}.jsonl")));
    // The rollout now names the worktree as its folder.
    let rollout = std::fs::read_to_string(&file).unwrap();
    assert!(
        rollout.contains(&format!("\"cwd\":\"{}\"", worktree.display())),
        "{rollout}"
    );
    assert!(pulled["continue"]
        .as_str()
        .unwrap()
        .ends_with(&format!("codex resume {thread}")));
    let _ = std::fs::remove_dir_all(&worktree);

    assert_nowhere_under(&repo.git_dir().join("handoff"), CODEX_KEY);
}

#[test]
fn missing_credentials_fail_the_task_at_once_naming_the_variables() {
    let repo = Repo::new(&[("a.txt", "a\n")], "");
    let started = Instant::now();
    let (task, _) = run_agent(&repo, "claude", "do something", &[]);
    assert_eq!(task["state"], "failed");
    let error = task["error"].as_str().unwrap();
    assert!(
        error.contains("`ANTHROPIC_API_KEY`") && error.contains("`CLAUDE_CODE_OAUTH_TOKEN`"),
        "{error}"
    );
    assert!(task["container_id"].is_null(), "no container was started");
    assert!(started.elapsed() < Duration::from_secs(20));
    // The prompt is kept: once the key is set, a reply runs it with the addition.
    let record = repo.task(1);
    assert_eq!(record["prompt"], "do something");
}

#[test]
fn claude_refused_credentials_and_rate_limits_are_told_in_words() {
    // Claude Code retries a refused request ten times over minutes; once is enough.
    let claude = Claude::new(
        &[("a.txt", "a\n")],
        "set_env = { CLAUDE_CODE_MAX_RETRIES = \"0\" }\n",
    );
    let (server, repo, url) = (&claude.server, &claude.repo, &claude.url);
    for (key, logged_as, words) in [
        (
            "sk-invalid",
            "key_is_invalid",
            "the model API refused the credentials (authentication error)",
        ),
        (
            "sk-rate-limited",
            "key_is_rate_limited",
            "the model API is rate limiting these requests (rate limit)",
        ),
    ] {
        let started = Instant::now();
        let (task, _) = run_agent(
            repo,
            "claude",
            "create b.txt containing b",
            &[
                ("ANTHROPIC_BASE_URL", url.as_str()),
                ("ANTHROPIC_API_KEY", key),
            ],
        );
        assert_eq!(task["state"], "failed", "{task:#}");
        let error = task["error"].as_str().unwrap();
        assert!(error.contains(words), "{key}: {error}");
        // set_env reached the CLI: it gave up at once instead of retrying for minutes.
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{:?}",
            started.elapsed()
        );
        let requests = server.requests();
        let refused = requests.iter().filter(|r| r[logged_as] == true).count();
        assert_eq!(refused, 1, "{key}: one request, no retries");
    }
}

#[test]
fn codex_refused_credentials_and_rate_limits_are_told_in_words() {
    let server = ModelServer::start();
    let repo = Repo::new(&[("a.txt", "a\n")], &codex_config(server.port));
    repo.write_user_config("allow_host_network = true\n");
    for (key, words) in [
        (
            "sk-invalid",
            "the model API refused the credentials (authentication error)",
        ),
        (
            "sk-rate-limited",
            "the model API is rate limiting these requests (rate limit)",
        ),
    ] {
        let (task, _) = run_agent(
            &repo,
            "codex",
            "create b.txt containing b",
            &[("MOCK_API_KEY", key)],
        );
        assert_eq!(task["state"], "failed", "{task:#}");
        let error = task["error"].as_str().unwrap();
        assert!(error.contains(words), "{key}: {error}");
    }
}

#[test]
fn a_reply_to_a_running_task_waits_for_the_turn_to_end() {
    let repo = Repo::new(&[("a.txt", "a\n")], "");
    let out = repo.handoff(&["run", "--json", "sleep 2; echo one > one.txt"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = repo.handoff(&["reply", "1", "--json", "echo two > two.txt"]);
    let task = json_of(&out, "handoff reply");
    assert_eq!(
        task["pending_replies"],
        serde_json::json!(["echo two > two.txt"])
    );
    let out = repo.handoff(&["reply", "1", "--json", "echo three > three.txt"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut task = Value::Null;
    eventually(120, "both turns to end", || {
        task = repo.task(1);
        task["state"] == "done" && task["turns"].as_array().is_some_and(|t| t.len() == 2)
    });
    let branch = task["branch"].as_str().unwrap();
    // Both queued replies went out together, in one turn, in order.
    assert_eq!(
        files_on(&repo, branch),
        ["a.txt", "one.txt", "three.txt", "two.txt"]
    );
    assert_eq!(
        task["turns"][1]["prompt"],
        "echo two > two.txt\n\necho three > three.txt"
    );
    assert_eq!(task["pending_replies"], serde_json::json!([]));
    let logs = stdout(&repo.handoff(&["show", "1"]));
    assert!(logs.contains("reply 1"), "{logs}");
}

#[test]
fn a_reply_while_docker_is_down_is_kept_and_its_turn_starts_once_docker_is_back() {
    let repo = Repo::new(&[("a.txt", "a\n")], "");
    let task = repo.run_wait("echo one > one.txt");
    assert_eq!(task["state"], "done", "{task:#}");
    let out = repo.handoff_env(
        &["reply", "1", "echo two > two.txt"],
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
    );
    assert!(!out.status.success());
    let said = stderr(&out);
    assert!(
        said.contains("your reply to task #1 is kept") && said.contains("/nonexistent/docker.sock"),
        "{said}"
    );
    // The record as it is on disk (`handoff show` would start the turn).
    let record = repo.git_dir().join("handoff/tasks/1/task.json");
    let task: Value = serde_json::from_slice(&std::fs::read(record).unwrap()).unwrap();
    assert_eq!(task["state"], "queued");
    assert_eq!(task["reply"], "echo two > two.txt");
    // Any front-end with Docker starts it.
    let mut task = Value::Null;
    eventually(120, "the second turn to end", || {
        task = repo.json(&["show", "1", "--json"]);
        task["state"] == "done" && task["turns"].as_array().is_some_and(|t| t.len() == 2)
    });
    assert_eq!(
        files_on(&repo, task["branch"].as_str().unwrap()),
        ["a.txt", "one.txt", "two.txt"]
    );
}

/// The credentials a model request carried, as the test server saw them.
fn keys_seen(server: &ModelServer) -> Vec<String> {
    server
        .requests()
        .into_iter()
        .filter(|r| r["method"] == "POST")
        .map(|r| r["key"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn the_builtin_codex_profile_as_shipped_works_with_openai_api_key_and_a_base_url() {
    let server = ModelServer::start();
    // Nothing of the profile changed: only the key and the endpoint, as a user sets them.
    let repo = Repo::new(&[("README.md", "# demo\n")], "");
    let _ = agent_image("codex");
    let base = format!("{}/v1", server.url());
    let env = [
        ("OPENAI_API_KEY", CODEX_KEY),
        ("OPENAI_BASE_URL", base.as_str()),
    ];
    let (task, out) = run_agent(
        &repo,
        "codex",
        "create hello.txt containing hi from codex",
        &env,
    );
    assert_eq!(task["state"], "done", "{task:#}\n{}", stderr(&out));
    assert_eq!(
        repo.show_bytes(task["branch"].as_str().unwrap(), "hello.txt"),
        b"hi from codex\n"
    );
    let keys = keys_seen(&server);
    assert!(
        !keys.is_empty() && keys.iter().all(|k| k == CODEX_KEY),
        "{keys:?}"
    );
    assert_nowhere_under(&repo.git_dir().join("handoff"), CODEX_KEY);
}

#[test]
fn the_builtin_claude_profile_as_shipped_works_with_an_oauth_token_the_container_never_sees() {
    let server = ModelServer::start();
    let repo = Repo::new(&[("README.md", "# demo\n")], "");
    let _ = agent_image("claude");
    const TOKEN: &str = "sk-ant-oat01-test-token-5e6f";
    let url = server.url();
    let env = [
        ("CLAUDE_CODE_OAUTH_TOKEN", TOKEN),
        ("ANTHROPIC_BASE_URL", url.as_str()),
    ];
    let (task, out) = run_agent(
        &repo,
        "claude",
        "create hello.txt containing hi from claude",
        &env,
    );
    assert_eq!(task["state"], "done", "{task:#}\n{}", stderr(&out));
    assert_eq!(
        repo.show_bytes(task["branch"].as_str().unwrap(), "hello.txt"),
        b"hi from claude\n"
    );
    let keys = keys_seen(&server);
    assert!(
        !keys.is_empty() && keys.iter().all(|k| k == TOKEN),
        "{keys:?}"
    );
    assert_nowhere_under(&repo.git_dir().join("handoff"), TOKEN);
}

#[test]
fn an_unreachable_model_server_ends_the_task_in_words_within_bounded_time() {
    // Port 1 on loopback: nothing listens there.
    let repo = Repo::new(&[("a.txt", "a\n")], "");
    for (agent, env) in [
        (
            "codex",
            [
                ("OPENAI_API_KEY", CODEX_KEY),
                ("OPENAI_BASE_URL", "http://127.0.0.1:1/v1"),
            ],
        ),
        (
            "claude",
            [
                ("ANTHROPIC_API_KEY", API_KEY),
                ("ANTHROPIC_BASE_URL", "http://127.0.0.1:1"),
            ],
        ),
    ] {
        let _ = agent_image(agent);
        let started = Instant::now();
        let (task, out) = run_agent(&repo, agent, "create b.txt containing b", &env);
        let took = started.elapsed();
        assert_eq!(
            task["state"],
            "failed",
            "{agent}: {task:#}\n{}",
            stderr(&out)
        );
        let error = task["error"].as_str().unwrap();
        assert!(
            error.contains("could not be reached") && error.contains("_BASE_URL"),
            "{agent}: {error}"
        );
        assert!(took.as_secs() < 150, "{agent} took {took:?}: a retry loop");
    }
}
