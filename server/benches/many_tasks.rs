//! Many tasks at once on a remote engine: `max_parallel = 40` against a private
//! dockerd on tcp + TLS (the fixture of `tests/remote_e2e.rs`: its own network
//! namespace, certificates made with openssl), 40 no-op tasks.
//!
//! - **handoff**: 40 × `handoff run true` (each returns once its task is started or
//!   queued), all at once, and `handoff list --json` over and over meanwhile until
//!   every task has ended. Measured: from the start to the moment `list` shows all 40
//!   ended (done), the latency of each `run`, and the latency of each `list` meanwhile
//!   (the front-end's responsiveness while 40 tasks run; each `list` also finalizes
//!   the tasks that ended, as every front-end command does).
//! - **raw**: 40 × `docker run --rm --network none IMAGE true` of the same image on the
//!   same engine, all started at once; from the first start to the last exit.
//!
//! Rounds: `HANDOFF_BENCH_ROUNDS` (default 1), `HANDOFF_BENCH_TASKS` (default 40). Root
//! is required (namespaces), as for the test. The table goes to stdout and to
//! `target/bench/many_tasks.md`.

#[path = "../tests/common/mod.rs"]
mod testkit;

mod common;
use common::*;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::engine::PrivateEngine;
use testkit::Repo;

fn main() {
    let rounds = rounds(1);
    let tasks = tasks(40);
    eprintln!("many_tasks: starting a private TLS engine");
    let engine = PrivateEngine::start_with_tls();
    let image = testkit::image().to_string();

    let mut results = Vec::new();
    for round in 1..=rounds {
        let repo = Repo::new(&[("a.txt", "a\n")], "");
        let config = repo.config_home().join("handoff");
        std::fs::create_dir_all(&config).unwrap();
        std::fs::write(
            config.join("config.toml"),
            format!(
                "max_parallel = {tasks}\n[engine]\nhost = \"{}\"\ncert_dir = \"{}\"\n",
                engine.tls_host(),
                engine.client_certs().display()
            ),
        )
        .unwrap();
        repo.give_to_test_user();
        // One task first, not counted: the base image of the commit is made once.
        let warm = engine.handoff(&repo, &["run", "--wait", "--json", "true"]);
        assert!(warm.status.success(), "{}", text(&warm.stderr));

        let h = handoff_round(&engine, &repo, tasks);
        eprintln!(
            "many_tasks: round {round}/{rounds}: handoff {:.1} s (runs {:.1} s), list p50 {:.0} ms",
            h.all_done.as_secs_f64(),
            h.submitted.as_secs_f64(),
            percentile(&h.list_ms, 50.0)
        );
        let r = raw_round(&engine, &image, tasks);
        eprintln!(
            "many_tasks: round {round}/{rounds}: raw {:.1} s",
            r.as_secs_f64()
        );
        results.push((h, r));
    }
    assert!(engine.containers().is_empty(), "{:?}", engine.containers());

    let table = render(&results, tasks, &image);
    println!("{table}");
    write_table("many_tasks", &table);
}

struct HandoffRound {
    /// From the first `run` to `list` showing every task ended.
    all_done: Duration,
    /// From the first `run` to the last `run` returning.
    submitted: Duration,
    run_ms: Vec<f64>,
    list_ms: Vec<f64>,
    /// Largest number of tasks `list` showed running at once.
    peak_running: usize,
}

fn handoff_round(engine: &PrivateEngine, repo: &Repo, tasks: usize) -> HandoffRound {
    let started = Instant::now();
    let started = &started;
    std::thread::scope(|scope| {
        // All the `run`s at once (an editor delegating many things, a script), each
        // timed by its own thread; `list` polls meanwhile.
        let runs: Vec<_> = (0..tasks)
            .map(|_| {
                scope.spawn(move || {
                    let t = Instant::now();
                    let out = engine.handoff(repo, &["run", "true"]);
                    assert!(
                        out.status.success(),
                        "handoff run failed: {}\n{}",
                        text(&out.stderr),
                        engine.log()
                    );
                    (ms(t.elapsed()), started.elapsed())
                })
            })
            .collect();
        let polled = poll_until_done(engine, repo, tasks);
        let mut run_ms = Vec::with_capacity(tasks);
        let mut submitted = Duration::ZERO;
        for run in runs {
            let (latency, returned) = run.join().expect("a run thread panicked");
            run_ms.push(latency);
            submitted = submitted.max(returned);
        }
        HandoffRound {
            all_done: started.elapsed(),
            submitted,
            run_ms,
            list_ms: polled.0,
            peak_running: polled.1,
        }
    })
}

/// `handoff list --json` until every task has ended (the warm-up and `tasks` more);
/// each latency (ms), and the most tasks it saw running at once.
fn poll_until_done(engine: &PrivateEngine, repo: &Repo, tasks: usize) -> (Vec<f64>, usize) {
    let mut list_ms = Vec::new();
    let mut peak_running = 0;
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let t = Instant::now();
        let out = engine.handoff(repo, &["list", "--json"]);
        list_ms.push(ms(t.elapsed()));
        assert!(out.status.success(), "handoff list: {}", text(&out.stderr));
        let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
        let listed = listed.as_array().unwrap();
        let state = |t: &Value| t["state"].as_str().unwrap_or("?").to_string();
        let running = listed.iter().filter(|t| state(t) == "running").count();
        peak_running = peak_running.max(running);
        let ended: Vec<String> = listed
            .iter()
            .map(state)
            .filter(|s| ["done", "failed", "cancelled"].contains(&s.as_str()))
            .collect();
        // The warm-up task and the round's tasks.
        if ended.len() == tasks + 1 {
            assert!(
                ended.iter().all(|s| s == "done"),
                "tasks failed: {listed:#?}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not all tasks ended within 15 minutes: {listed:#?}"
        );
    }
    (list_ms, peak_running)
}

/// 40 `docker run --rm` of `true`, all at once, on the engine; until the last exits.
fn raw_round(engine: &PrivateEngine, image: &str, tasks: usize) -> Duration {
    let started = Instant::now();
    let children: Vec<_> = (0..tasks)
        .map(|_| {
            Command::new("docker")
                .arg("-H")
                .arg(engine.docker_host())
                .args(["run", "--rm", "--network", "none", image, "true"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("cannot run docker")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "docker run: {}", text(&out.stderr));
    }
    started.elapsed()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn render(results: &[(HandoffRound, Duration)], tasks: usize, image: &str) -> String {
    let mut s = format!(
        "## {tasks} tasks at once on a TLS engine (`max_parallel = {tasks}`)\n\n\
         Agent `true` in `{image}`, network none; the engine is a private dockerd in a \
         network namespace on tcp + TLS. handoff: {tasks} × `handoff run true` all at \
         once, and `handoff list --json` in a loop meanwhile until all are done. raw: {tasks} × `docker run --rm` of the same image on the same \
         engine (its unix socket), all started at once, until the last exits.\n\n\
         | round | handoff: all done | last `run` returned | raw: all exited | handoff / raw | most running at once | `run` p50 / p99 ms | `list` p50 / p99 ms (n) |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|\n"
    );
    for (n, (h, raw)) in results.iter().enumerate() {
        s.push_str(&format!(
            "| {} | {:.1} s | {:.1} s | {:.1} s | {:.2}x | {} | {:.0} / {:.0} | {:.0} / {:.0} ({}) |\n",
            n + 1,
            h.all_done.as_secs_f64(),
            h.submitted.as_secs_f64(),
            raw.as_secs_f64(),
            h.all_done.as_secs_f64() / raw.as_secs_f64(),
            h.peak_running,
            percentile(&h.run_ms, 50.0),
            percentile(&h.run_ms, 99.0),
            percentile(&h.list_ms, 50.0),
            percentile(&h.list_ms, 99.0),
            h.list_ms.len()
        ));
    }
    s
}
