//! `handoff list` with many task records: 1 000 and 10 000.
//!
//! Records are written straight into a store (the bytes `Store::save` writes, without
//! its fsync per record), never by running containers: what is measured is listing,
//! not making tasks. They are finished tasks of every kind (done with changed files
//! and a check, failed with an error, cancelled, a follow-up or two), about the size
//! of real ones.
//!
//! For each size the real binary is timed, from process start to exit, with its
//! output read through a pipe as a script or a terminal would, and the CPU time it
//! used (on a busy machine, wall time is mostly waiting for a CPU): `handoff list`
//! and `handoff list --json`, each checked to name every task. `list` reconciles with
//! Docker first (`tick`), so an engine must be reachable, as it is for users; no
//! record is active, so no container is asked about. Measured:
//!
//! - **steady**: the usual case, rounds after a first listing;
//! - **first**: the first listing of a store without a task index (made by an older
//!   Handoff, or the index lost), on a fresh copy of the records each round;
//! - **after changes**: 20 records replaced (as task updates do) since the last listing.
//!
//! And, in process, `Store::list` itself (no process start, no output) for the same
//! stores. Rounds: `HANDOFF_BENCH_ROUNDS` (default 10). The table goes to stdout and to
//! `target/bench/list_scale.md`.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use handoff::engine::store::Store;
use handoff::engine::task::{Task, TaskId};
use serde_json::{json, Value};

const SIZES: [usize; 2] = [1_000, 10_000];
/// Records replaced between listings in the "after changes" rows.
const CHANGED: usize = 20;

fn main() {
    let rounds = rounds(10);
    let xdg = tempfile::tempdir().expect("cannot create a temp dir for XDG_CONFIG_HOME");
    let mut rows = Vec::new();
    let mut inproc = Vec::new();
    for n in SIZES {
        eprintln!("list_scale: writing {n} records");
        let repo = Fixture::new(n);
        let ctx = Ctx { xdg: xdg.path() };

        // First listings: each on a store that has never been listed.
        let mut first_table = Vec::new();
        let mut first_json = Vec::new();
        for round in 0..rounds.min(5) {
            let fresh = repo.copy();
            first_table.push(ctx.list(&fresh, false, n));
            let fresh = repo.copy();
            first_json.push(ctx.list(&fresh, true, n));
            eprintln!(
                "list_scale: {n}: first listing {}/{}: {:.0} ms, --json {:.0} ms",
                round + 1,
                rounds.min(5),
                ms(first_table.last().expect("a sample").wall),
                ms(first_json.last().expect("a sample").wall)
            );
        }

        // Steady state.
        ctx.list(&repo, false, n);
        ctx.list(&repo, true, n);
        let mut table = Vec::new();
        let mut json = Vec::new();
        for _ in 0..rounds {
            table.push(ctx.list(&repo, false, n));
            json.push(ctx.list(&repo, true, n));
        }
        eprintln!(
            "list_scale: {n}: steady: list {}, --json {} (wall median / p90 | CPU, ms)",
            cell(&table),
            cell(&json)
        );

        // A few records replaced since the last listing.
        let mut changed = Vec::new();
        for round in 0..rounds {
            repo.touch_records(round);
            changed.push(ctx.list(&repo, false, n));
        }

        rows.push(Row {
            label: format!("{n} records, steady"),
            table,
            json,
        });
        rows.push(Row {
            label: format!("{n} records, first listing"),
            table: first_table,
            json: first_json,
        });
        rows.push(Row {
            label: format!("{n} records, {CHANGED} changed since the last listing"),
            table: changed,
            json: Vec::new(),
        });

        // In process: Store::list, a fresh Store each time (as a new process would
        // have), then the same Store again.
        let mut fresh = Vec::new();
        let mut again = Vec::new();
        for _ in 0..rounds {
            let store = Store::open(&repo.git_dir()).expect("open the store");
            let started = Instant::now();
            let listed = store.list().expect("Store::list");
            fresh.push(started.elapsed());
            assert_eq!(listed.len(), n, "Store::list lost records");
            let started = Instant::now();
            let listed = store.list().expect("Store::list");
            again.push(started.elapsed());
            assert_eq!(listed.len(), n, "Store::list lost records");
        }
        inproc.push((n, fresh, again));
    }

    let text = render(&rows, &inproc, rounds);
    println!("{text}");
    write_table("list_scale", &text);
}

/// A repository with one commit and `n` finished task records.
struct Fixture {
    dir: tempfile::TempDir,
    n: usize,
}

impl Fixture {
    fn new(n: usize) -> Fixture {
        let dir = tempfile::tempdir().expect("cannot create a temp dir");
        let path = dir.path();
        git(path, &["init", "-q", "-b", "main"]);
        std::fs::write(path.join("README.md"), "bench\n").expect("write README.md");
        git(path, &["add", "-A"]);
        git(path, &["commit", "-q", "-m", "initial"]);
        let fixture = Fixture { dir, n };
        let store = Store::open(&fixture.git_dir()).expect("open the store");
        for id in 1..=n as u64 {
            write_record(&store, &record(id, 0));
        }
        std::fs::write(store.root().join("next-id"), format!("{}\n", n + 1))
            .expect("write next-id");
        fixture
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn git_dir(&self) -> PathBuf {
        self.path().join(".git")
    }

    /// A copy of the repository whose store has never been listed: the records only.
    fn copy(&self) -> Fixture {
        let dir = tempfile::tempdir().expect("cannot create a temp dir");
        let out = Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", self.path().display()))
            .arg(dir.path())
            .output()
            .expect("cannot run cp");
        assert!(out.status.success(), "cp -a failed");
        let copy = Fixture { dir, n: self.n };
        // Whatever a listing leaves beside the records goes: only they are copied.
        let root = copy.git_dir().join("handoff");
        for entry in std::fs::read_dir(&root).expect("read the store").flatten() {
            let name = entry.file_name();
            if name != "tasks" && name != "next-id" {
                let p = entry.path();
                if p.is_dir() {
                    std::fs::remove_dir_all(&p).expect("remove a store folder");
                } else {
                    std::fs::remove_file(&p).expect("remove a store file");
                }
            }
        }
        copy
    }

    /// Replaces [`CHANGED`] records spread over the store, as updates would.
    fn touch_records(&self, round: usize) {
        let store = Store::open(&self.git_dir()).expect("open the store");
        for k in 0..CHANGED {
            let id = ((round * CHANGED + k) * 7919) % self.n + 1;
            write_record(&store, &record(id as u64, round + 1));
        }
    }
}

/// Writes `task` where `Store::save` would, with the same bytes, but without an fsync
/// per record (ten thousand of them would take minutes on a disk).
fn write_record(store: &Store, task: &Task) {
    let dir = store.task_dir(task.id);
    std::fs::create_dir_all(&dir).expect("create a task folder");
    let mut bytes = serde_json::to_vec_pretty(task).expect("serialize a record");
    bytes.push(b'\n');
    let tmp = dir.join("task.json.tmp");
    std::fs::write(&tmp, &bytes).expect("write a record");
    std::fs::rename(&tmp, dir.join("task.json")).expect("rename a record");
    std::fs::write(dir.join("prompt.txt"), task.prompt.as_bytes()).expect("write a prompt");
}

/// A finished task record of one of a few kinds, by `id`; `version` varies a field so
/// that a rewritten record differs.
fn record(id: u64, version: usize) -> Task {
    let kind = id % 10;
    let state = match kind {
        0 => "failed",
        1 => "cancelled",
        _ => "done",
    };
    let title = format!("handle the empty list in parser {id} (item {version})");
    let prompt = format!(
        "TODO: {title}\n\nFile: src/parser/m{}/mod_{id}.rs (Rust)\n\nContext:\n\
         fn parse_items(input: &str) -> Vec<Item> {{\n    let mut out = Vec::new();\n    \
         for line in input.lines() {{\n        out.push(Item::from(line));\n    }}\n    out\n}}\n",
        id % 50
    );
    let commit = |salt: u64| format!("{:040x}", (id.wrapping_mul(0x9e37_79b9) ^ salt) as u128);
    let time = |s: i64| {
        chrono::DateTime::from_timestamp(1_780_000_000 + id as i64 * 60 + s, 0)
            .expect("a timestamp")
            .to_rfc3339()
    };
    let files: Vec<String> = (0..(id % 5 + 1))
        .map(|f| format!("src/parser/m{}/file_{f}.rs", id % 50))
        .collect();
    let error: Value = match state {
        "failed" => json!("the agent exited with code 1: error[E0308]: mismatched types"),
        "cancelled" => json!("cancelled by the user"),
        _ => Value::Null,
    };
    let check = json!({
        "command": "cargo test -q",
        "exit_code": 0,
        "passed": true,
        "output": "running 42 tests\n..........................................\ntest result: ok. 42 passed; 0 failed\n"
    });
    let turn = |n: i64, prompt: &str| {
        json!({
            "prompt": prompt,
            "state": state,
            "error": error,
            "exit_code": if state == "done" { json!(0) } else { json!(1) },
            "head_commit": commit(n as u64 + 1),
            "started_at": time(n * 100 + 2),
            "finished_at": time(n * 100 + 95),
            "check": check,
        })
    };
    let mut turns = vec![turn(0, &prompt)];
    if kind == 5 {
        turns.push(turn(1, "also cover the error path"));
    }
    let value = json!({
        "id": id,
        "state": state,
        "agent": if kind.is_multiple_of(3) { "codex" } else { "claude" },
        "prompt": prompt,
        "title": title,
        "branch": format!("handoff/{id}-handle-the-empty-list-in-parser-{id}"),
        "base_commit": commit(0),
        "head_commit": commit(1),
        "files_changed": files,
        "error": error,
        "image": "handoff-claude:3f9a1c2b7d4e",
        "container_id": Value::Null,
        "exit_code": if state == "done" { json!(0) } else { json!(1) },
        "oom_killed": false,
        "cancel_requested": state == "cancelled",
        "env_names": ["ANTHROPIC_API_KEY"],
        "origin": { "path": format!("src/parser/m{}/mod_{id}.rs", id % 50), "line": id % 400 },
        "phases_ms": { "snapshot": 4, "workspace": 12, "container": 310, "finalize": 9 },
        "created_at": time(0),
        "started_at": time(2),
        "finished_at": time(95),
        "turns": turns,
        "reply": Value::Null,
        "pending_replies": [],
        "session_id": "0f8e6c1a-5b7d-4c3e-9a2f-1d0e8b7c6a5f",
        "check": check,
        "check_repairs": 0,
        "workspace_base": commit(2),
        "claim": Value::Null,
        "not_imported": [],
        "sensitive_files": [],
        "warnings": [],
        "blocked": [],
        "stopped_for": Value::Null,
        "phase": "agent",
        "spent": { "turns": 14, "cost_usd": 0.4213 },
        "group": Value::Null,
        "lines_added": 40 + id % 17,
        "lines_removed": 3 + id % 5,
    });
    let task: Task = serde_json::from_value(value)
        .unwrap_or_else(|e| panic!("the bench's record no longer matches Task: {e}"));
    assert_eq!(task.id, TaskId(id));
    task
}

struct Ctx<'a> {
    xdg: &'a Path,
}

impl Ctx<'_> {
    /// `handoff list [--json]`, timed from process start to exit, with the CPU time it
    /// used; checks that every one of the `n` tasks is listed.
    fn list(&self, repo: &Fixture, json: bool, n: usize) -> Sample {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_handoff"));
        cmd.arg("list")
            .current_dir(repo.path())
            .env("XDG_CONFIG_HOME", self.xdg)
            .env_remove("HANDOFF_LOG");
        if json {
            cmd.arg("--json");
        }
        let cpu_before = children_cpu();
        let started = Instant::now();
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", env!("CARGO_BIN_EXE_handoff")));
        let took = Sample {
            wall: started.elapsed(),
            cpu: children_cpu() - cpu_before,
        };
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "handoff list failed: {stderr}");
        assert!(
            !stderr.contains("stale"),
            "handoff list could not reconcile (is Docker running?): {stderr}"
        );
        if json {
            let tasks: Vec<Value> = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|e| panic!("handoff list --json printed no JSON array: {e}"));
            assert_eq!(tasks.len(), n, "handoff list --json lost tasks");
            let last = &tasks[n - 1];
            assert_eq!(last["id"], n as u64, "tasks out of order");
            assert!(last["state"].is_string() && last["branch"].is_string());
        } else {
            let text = String::from_utf8_lossy(&out.stdout);
            // A header line, then one line per task.
            assert_eq!(text.lines().count(), n + 1, "handoff list lost tasks");
        }
        took
    }
}

/// One run: its wall time, and the CPU time (user and system, all threads) it used.
#[derive(Clone, Copy)]
struct Sample {
    wall: Duration,
    cpu: Duration,
}

/// CPU time of this process's waited-for children so far.
fn children_cpu() -> Duration {
    // SAFETY: getrusage only writes into the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage), 0);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

struct Row {
    label: String,
    table: Vec<Sample>,
    json: Vec<Sample>,
}

fn sorted_ms(values: &[Duration]) -> Vec<f64> {
    let mut v: Vec<f64> = values.iter().map(|d| ms(*d)).collect();
    v.sort_by(f64::total_cmp);
    v
}

/// The median (mean of the middle two for an even count).
fn median(values: &[Duration]) -> f64 {
    let v = sorted_ms(values);
    assert!(!v.is_empty(), "no samples");
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The `p`-th percentile by nearest rank.
fn percentile(values: &[Duration], p: f64) -> f64 {
    let v = sorted_ms(values);
    assert!(!v.is_empty(), "no samples");
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// Wall median / p90, then CPU median, in ms.
fn cell(samples: &[Sample]) -> String {
    if samples.is_empty() {
        return "– | –".into();
    }
    let wall: Vec<Duration> = samples.iter().map(|s| s.wall).collect();
    let cpu: Vec<Duration> = samples.iter().map(|s| s.cpu).collect();
    format!(
        "{:.0} / {:.0} | {:.0}",
        median(&wall),
        percentile(&wall, 90.0),
        median(&cpu)
    )
}

fn render(rows: &[Row], inproc: &[(usize, Vec<Duration>, Vec<Duration>)], rounds: usize) -> String {
    let mut s = String::new();
    s.push_str("## `handoff list` with many records\n\n");
    s.push_str(&format!(
        "The real binary, process start to exit, output read through a pipe: wall time \
         median / p90, and the CPU time it used (user + system, all its threads; median), in \
         ms. On a loaded machine the wall time is mostly waiting for a CPU. Records in `{}`. \
         Target: `handoff list` of 10 000 records < 100 ms.\n\n",
        std::env::temp_dir().display()
    ));
    s.push_str(
        "| store | runs | `handoff list` wall | CPU | `handoff list --json` wall | CPU |\n\
         |---|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            r.label,
            r.table.len(),
            cell(&r.table),
            cell(&r.json)
        ));
    }
    s.push_str(&format!(
        "\n### `Store::list` in process (median / p90 ms, {rounds} rounds)\n\n\
         | records | new `Store` | same `Store` again |\n|---:|---:|---:|\n"
    ));
    for (n, fresh, again) in inproc {
        s.push_str(&format!(
            "| {n} | {:.1} / {:.1} | {:.1} / {:.1} |\n",
            median(fresh),
            percentile(fresh, 90.0),
            median(again),
            percentile(again, 90.0)
        ));
    }
    s
}
