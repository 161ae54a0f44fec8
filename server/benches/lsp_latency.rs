//! Code-action latency of `handoff lsp` under load, and server-side accept time.
//!
//! The real server (`handoff::lsp::Backend` in a `tower_lsp_server::LspService`) is
//! driven in-process through its service interface, so the figures are the server's
//! own time without pipe I/O. Load: a 10 000-line file in a repository with 100
//! tasks: 80 finished, each holding a hunk in the file, and 20 running (real
//! containers, real Docker). Baseline: the same requests on the same file in a
//! repository without tasks, in the same run.
//!
//! Memory: the server runs in this process, so the figures are this process's
//! (`VmRSS` and `VmHWM` from `/proc/self/status`), read once the loaded server has
//! answered every request and before the baseline server starts: the server plus the
//! bench's own small bookkeeping, an upper bound of the server's.
//!
//! `cargo bench --bench lsp_latency`; rounds with HANDOFF_BENCH_REQUESTS (default 2000).
//! Targets: code actions p99 < 5 ms and RSS < 100 MB with 100 tasks.

mod common;
use common::*;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tower::{Service, ServiceExt};
use tower_lsp_server::jsonrpc::{Request, Response};
use tower_lsp_server::{ClientSocket, LspService};

const LINES: usize = 10_000;
const FINISHED: usize = 80;
const RUNNING: usize = 20;
/// Task N rewrites line SPACING·N: one hunk per finished task, spread through the file.
const SPACING: usize = LINES / (FINISHED + 1);

fn sh(dir: &Path, program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("XDG_CONFIG_HOME", dir.join(".no-user-config"))
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn handoff(dir: &Path, args: &[&str]) -> String {
    sh(dir, env!("CARGO_BIN_EXE_handoff"), args)
}

fn big_file() -> String {
    (0..LINES)
        .map(|i| format!("    let value_{i} = compute({i}, \"item {i}\"); // line {i}\n"))
        .collect()
}

/// A repository with big.rs; `tasks` true adds the finished and running tasks.
fn repo(image: &str, tasks: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    sh(p, "git", &["init", "-q", "-b", "main"]);
    std::fs::write(p.join("big.rs"), big_file()).unwrap();
    let config = format!(
        "default_agent = \"edit\"\nmax_parallel = 32\n\
         [agents.edit]\nimage = \"{image}\"\n\
         command = [\"sh\", \"-c\", \"sed -i \\\"$((HANDOFF_TASK_ID * {SPACING}))s/.*/    changed_by_task($HANDOFF_TASK_ID);/\\\" big.rs\"]\n\
         [agents.sleeper]\nimage = \"{image}\"\ncommand = [\"sleep\", \"600\"]\n"
    );
    std::fs::write(p.join(".handoff.toml"), config).unwrap();
    sh(p, "git", &["add", "-A"]);
    sh(
        p,
        "git",
        &[
            "-c",
            "user.name=b",
            "-c",
            "user.email=b@e",
            "commit",
            "-qm",
            "big",
        ],
    );
    std::fs::write(p.join(".git/info/exclude"), ".no-user-config/\n").unwrap();
    handoff(p, &["trust"]);
    if tasks {
        for i in 0..FINISHED {
            handoff(p, &["run", &format!("edit {i}")]);
        }
        let deadline = Instant::now() + Duration::from_secs(900);
        loop {
            let list: Value = serde_json::from_str(&handoff(p, &["list", "--json"])).unwrap();
            let done = list
                .as_array()
                .unwrap()
                .iter()
                .filter(|t| t["state"] == "done")
                .count();
            if done == FINISHED {
                break;
            }
            assert!(Instant::now() < deadline, "tasks did not finish: {list:#}");
            std::thread::sleep(Duration::from_millis(300));
        }
        for i in 0..RUNNING {
            handoff(p, &["run", "--agent", "sleeper", &format!("sleep {i}")]);
        }
        let list: Value = serde_json::from_str(&handoff(p, &["list", "--json"])).unwrap();
        let running = list
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["state"] == "running")
            .count();
        assert_eq!(running, RUNNING, "{list:#}");
    }
    dir
}

/// Answers the server's requests to the client (`workspace/applyEdit`: applied) and
/// drops its notifications, as an editor would.
async fn fake_editor(socket: ClientSocket) {
    let (mut requests, mut responses) = socket.split();
    while let Some(req) = requests.next().await {
        if let Some(id) = req.id().cloned() {
            let result = if req.method() == "workspace/applyEdit" {
                json!({ "applied": true })
            } else {
                Value::Null
            };
            let _ = responses.send(Response::from_ok(id, result)).await;
        }
    }
}

struct Server {
    service: LspService<handoff::lsp::Backend>,
    next_id: i64,
}

impl Server {
    async fn start(root: &Path) -> Server {
        let (service, socket) = LspService::new(handoff::lsp::Backend::new);
        tokio::spawn(fake_editor(socket));
        let mut server = Server {
            service,
            next_id: 1,
        };
        let root_uri = url::Url::from_file_path(root).unwrap().to_string();
        server
            .request(
                "initialize",
                json!({
                    "processId": null,
                    "rootUri": root_uri,
                    "capabilities": {
                        "general": { "positionEncodings": ["utf-16"] },
                        "workspace": { "applyEdit": true, "workspaceEdit": { "documentChanges": true } }
                    }
                }),
            )
            .await;
        server.notify("initialized", json!({})).await;
        server
    }

    async fn request(&mut self, method: &'static str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let req = Request::build(method).id(id).params(params).finish();
        let resp = self
            .service
            .ready()
            .await
            .unwrap()
            .call(req)
            .await
            .unwrap()
            .expect("a response");
        let (_, result) = resp.into_parts();
        result.unwrap_or_else(|e| panic!("{method} failed: {e:?}"))
    }

    async fn notify(&mut self, method: &'static str, params: Value) {
        let req = Request::build(method).params(params).finish();
        self.service.ready().await.unwrap().call(req).await.unwrap();
    }
}

fn code_action(uri: &str, line: usize) -> Value {
    let pos = json!({ "line": line, "character": 4 });
    json!({
        "textDocument": { "uri": uri },
        "range": { "start": pos, "end": pos },
        "context": { "diagnostics": [] }
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

/// Opens big.rs and times `requests` code actions spread over the file.
async fn measure(root: &Path, requests: usize) -> (Vec<Duration>, Server, String, usize) {
    let mut server = Server::start(root).await;
    let path = root.join("big.rs");
    let uri = url::Url::from_file_path(&path).unwrap().to_string();
    server
        .notify(
            "textDocument/didOpen",
            json!({ "textDocument": {
                "uri": uri, "languageId": "rust", "version": 1,
                "text": std::fs::read_to_string(&path).unwrap()
            }}),
        )
        .await;
    // Warm-up: the first request per task computes its hunks from git.
    let mut offered = 0;
    for n in 1..=FINISHED {
        let actions = server
            .request(
                "textDocument/codeAction",
                code_action(&uri, n * SPACING - 1),
            )
            .await;
        let titles: Vec<&str> = actions
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| a["title"].as_str())
            .collect();
        if titles.iter().any(|t| t.starts_with("Accept change")) {
            offered += 1;
        }
    }
    let mut times = Vec::with_capacity(requests);
    let mut line = 7usize;
    for i in 0..requests {
        // Every fourth request lands on a hunk; the rest anywhere in the file.
        let at = if i % 4 == 0 {
            (i / 4 % FINISHED + 1) * SPACING - 1
        } else {
            line % LINES
        };
        line = line.wrapping_mul(1103515245).wrapping_add(12345) % 1_000_003;
        let start = Instant::now();
        let result = server
            .request("textDocument/codeAction", code_action(&uri, at))
            .await;
        times.push(start.elapsed());
        std::hint::black_box(result);
    }
    times.sort();
    (times, server, uri, offered)
}

struct Memory {
    rss: u64,
    hwm: u64,
}

/// This process's resident memory now and at its peak, in KiB.
fn memory_kib() -> Memory {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/self/status"))
    };
    Memory {
        rss: field("VmRSS:"),
        hwm: field("VmHWM:"),
    }
}

fn main() {
    let requests: usize = std::env::var("HANDOFF_BENCH_REQUESTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/images/busybox-git.sh");
    let out = Command::new("sh").arg(&script).output().unwrap();
    assert!(
        out.status.success(),
        "test image: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let image = String::from_utf8(out.stdout).unwrap().trim().to_string();

    eprintln!("preparing: {FINISHED} finished and {RUNNING} running tasks (real Docker)…");
    let loaded = repo(&image, true);
    let plain = repo(&image, false);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    let (times, mut server, uri, offered) = rt.block_on(measure(loaded.path(), requests));
    assert_eq!(
        offered, FINISHED,
        "every finished task's hunk must offer Accept"
    );

    // Accept: one hunk from each of ten tasks (the workspace/applyEdit follows the answer).
    let mut accepts = Vec::new();
    for task in 1..=10u64 {
        let start = Instant::now();
        let result = rt.block_on(server.request(
            "workspace/executeCommand",
            json!({ "command": "handoff.accept", "arguments": [{ "task": task, "uri": uri, "hunk": 0 }] }),
        ));
        accepts.push(start.elapsed());
        assert_eq!(
            result["accepted"],
            json!([0]),
            "accept of task {task}: {result}"
        );
    }
    accepts.sort();
    // The loaded server's memory, before any other server runs in this process.
    let memory = memory_kib();
    drop(server);

    let (base, _s, _, _) = rt.block_on(measure(plain.path(), requests));

    for t in 0..RUNNING {
        let id = (FINISHED + 1 + t).to_string();
        handoff(loaded.path(), &["cancel", &id]);
    }

    let ratio = percentile(&times, 0.5).as_secs_f64() / percentile(&base, 0.5).as_secs_f64();
    let p99 = percentile(&times, 0.99);
    let mib = |kib: u64| kib as f64 / 1024.0;
    let verdict = |ok: bool| if ok { "met" } else { "**missed**" };
    let table = format!(
        "| measure | p50 | p99 | max |\n|---|---|---|---|\n\
         | code action, no tasks (baseline) | {} | {} | {} |\n\
         | code action, {FINISHED} finished + {RUNNING} running tasks | {} | {} | {} |\n\
         | accept a hunk (server side; the applyEdit follows the answer) | {} | {} | {} |\n\n\
         {requests} code actions on a {LINES}-line file; loaded/baseline p50 ratio {ratio:.2}×\n\n\
         | memory of the bench process (server in process), {} tasks | MiB |\n|---|---:|\n\
         | VmRSS after the loaded run | {:.1} |\n\
         | VmHWM (peak) up to then | {:.1} |\n\n\
         | target | measured | |\n|---|---:|---|\n\
         | code action p99 < 5 ms with {} tasks | {} | {} |\n\
         | RSS < 100 MB with {} tasks (peak) | {:.1} MB | {} |\n",
        us(percentile(&base, 0.5)),
        us(percentile(&base, 0.99)),
        us(*base.last().unwrap()),
        us(percentile(&times, 0.5)),
        us(p99),
        us(*times.last().unwrap()),
        us(percentile(&accepts, 0.5)),
        us(percentile(&accepts, 0.99)),
        us(*accepts.last().unwrap()),
        FINISHED + RUNNING,
        mib(memory.rss),
        mib(memory.hwm),
        FINISHED + RUNNING,
        us(p99),
        verdict(p99 < Duration::from_millis(5)),
        FINISHED + RUNNING,
        memory.hwm as f64 * 1024.0 / 1e6,
        verdict(memory.hwm * 1024 < 100_000_000),
    );
    print!("{table}");
    write_table("lsp_latency", &table);
    drop(rt);
}
