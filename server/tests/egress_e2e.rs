//! Egress and credentials on a real engine, with hostile agents: inside a private
//! engine's network namespace the test puts two web servers on addresses of its own,
//! one on the agent's allowlist and one not, and a model endpoint whose key Handoff's
//! proxy adds. The agent (busybox `wget` through the proxy Handoff gives it) reaches
//! the first, is refused the second — which is recorded on the task and never sees a
//! byte — and calls the endpoint without ever holding the key.
//!
//! Needs root (network namespaces), like the fault tests.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::engine::PrivateEngine;
use common::*;

/// The key the user has; the proxy adds it, the container never holds it.
const KEY: &str = "sk-egress-test-3c1f9a";

/// A web server inside the engine's namespace that answers every GET with `answer`
/// and writes each request's path and headers to `log`, one JSON line each.
struct Server {
    child: Child,
    log: PathBuf,
}

const SERVER: &str = r#"
import http.server, json, sys
addr, port, answer, log = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(log, "a") as f:
            f.write(json.dumps({"path": self.path, "headers": dict(self.headers)}) + "\n")
        body = answer.encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer((addr, port), H).serve_forever()
"#;

impl Server {
    fn start(engine: &PrivateEngine, dir: &Path, addr: &str, answer: &str) -> Server {
        let log = dir.join(format!("{addr}.log"));
        std::fs::write(&log, "").unwrap();
        let child = Command::new("nsenter")
            .arg(format!("--net={}", engine.netns().display()))
            .args(["--", "python3", "-c", SERVER, addr, "8080", answer])
            .arg(&log)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start python3");
        let mut server = Server { child, log };
        // Up once the port answers (from inside the namespace).
        let started = Instant::now();
        loop {
            let probe = Command::new("nsenter")
                .arg(format!("--net={}", engine.netns().display()))
                .args([
                    "--",
                    "python3",
                    "-c",
                    "import socket,sys; socket.create_connection((sys.argv[1], 8080), 1)",
                    addr,
                ])
                .output()
                .unwrap();
            if probe.status.success() {
                break;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                let mut err = String::new();
                server
                    .child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err)
                    .unwrap();
                panic!("the server on {addr} ended ({status}): {err}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the server on {addr}:8080 never answered"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // The probe left no log line (it sent nothing).
        server
    }

    fn requests(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The agent: a script in the repository named `aider`, so that Handoff gives it the
/// aider credential plan (the key behind an `OPENAI_API_BASE` route of the proxy).
const AGENT: &str = r#"#!/bin/sh
env > /tmp/env.txt
grep -c "sk-egress" /tmp/env.txt > key-in-env.txt
wget -q -O allowed.txt http://10.88.0.1:8080/hello || echo failed > allowed.txt
wget -q -O blocked.txt http://10.88.0.2:8080/secret || echo refused > blocked.txt
wget -q -O model.txt --header "Authorization: Bearer $OPENAI_API_KEY" "$OPENAI_API_BASE/models" || echo failed > model.txt
echo "$OPENAI_API_KEY" > key-the-agent-has.txt
"#;

#[test]
fn an_agent_reaches_only_its_allowlist_and_never_holds_the_key_the_proxy_adds() {
    let engine = PrivateEngine::start();
    for addr in ["10.88.0.1/32", "10.88.0.2/32"] {
        engine.in_netns(&["ip", "addr", "add", addr, "dev", "lo"]);
    }
    let logs = tempfile::tempdir().unwrap();
    let allowed = Server::start(&engine, logs.path(), "10.88.0.1", "allowed-ok");
    let blocked = Server::start(&engine, logs.path(), "10.88.0.2", "never-seen");

    let config = format!(
        "[agents.aider]\nimage = \"{}\"\ncommand = [\"/workspace/aider\"]\nnetwork = \"egress\"\nallow = [\"10.88.0.1:8080\"]\n",
        image()
    );
    let repo = Repo::new(&[("aider", AGENT)], &config);
    let mode = Command::new("chmod")
        .args(["755"])
        .arg(repo.path().join("aider"))
        .status()
        .unwrap();
    assert!(mode.success());
    repo.git(&["commit", "-qam", "executable agent"]);
    repo.give_to_test_user();
    repo.trust();

    let base = "http://10.88.0.1:8080/v1";
    let out = engine.handoff_env(
        &repo,
        &["run", "--agent", "aider", "--wait", "--json", "go"],
        &[("OPENAI_API_KEY", KEY), ("OPENAI_API_BASE", base)],
    );
    let task: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON ({e}):\n{}\n{}\n{}",
            stdout(&out),
            stderr(&out),
            engine.log()
        )
    });
    assert_eq!(task["state"], "done", "{task:#}\n{}", stderr(&out));
    let branch = task["branch"].as_str().unwrap();
    let file = |name: &str| String::from_utf8(repo.show_bytes(branch, name)).unwrap();

    // The allowlisted server answered through the proxy.
    assert_eq!(file("allowed.txt"), "allowed-ok");
    let hello: Vec<_> = allowed
        .requests()
        .into_iter()
        .filter(|r| r["path"] == "/hello")
        .collect();
    assert_eq!(hello.len(), 1, "{:?}", allowed.requests());

    // The other one was refused at the proxy: it never saw a request, and the task
    // says where the agent tried to go.
    assert_eq!(file("blocked.txt"), "refused\n");
    assert!(blocked.requests().is_empty(), "{:?}", blocked.requests());
    let refused = task["blocked"].as_array().unwrap();
    assert!(
        refused
            .iter()
            .any(|b| b["host"] == "10.88.0.2" && b["port"] == 8080),
        "{task:#}"
    );
    let shown = stdout(&engine.handoff(&repo, &["show", "1"]));
    assert!(shown.contains("10.88.0.2:8080"), "{shown}");

    // The model endpoint got the real key, added by the proxy on the way; the agent
    // held only a placeholder, in its environment and anywhere it wrote.
    assert_eq!(file("model.txt"), "allowed-ok");
    let models: Vec<_> = allowed
        .requests()
        .into_iter()
        .filter(|r| r["path"] == "/v1/models")
        .collect();
    assert_eq!(models.len(), 1, "{:?}", allowed.requests());
    let auth = models[0]["headers"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.as_str().unwrap().to_string());
    assert_eq!(auth.as_deref(), Some(format!("Bearer {KEY}").as_str()));
    assert_eq!(
        file("key-in-env.txt"),
        "0\n",
        "the key was in the agent's environment"
    );
    let held = file("key-the-agent-has.txt");
    assert!(!held.contains(KEY), "the agent held the key: {held}");
    // Nor in anything Handoff kept of the task.
    assert_nowhere(&repo.git_dir().join("handoff"), KEY);
}

/// `needle` appears in no file below `dir`.
fn assert_nowhere(dir: &Path, needle: &str) {
    let out = Command::new("grep")
        .args(["-rl", "--binary-files=text", needle])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.stdout.is_empty(),
        "{needle} found in: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}
