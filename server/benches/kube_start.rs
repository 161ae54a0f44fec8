//! Task start on Kubernetes against Kubernetes' own raw baseline, for 5 000 and
//! 50 000 files, on the tests' real single-node Kubernetes 1.20 (`tests/common/k8s.rs`,
//! started by `scripts/k8s-node.sh`; its apiserver on 127.0.0.1).
//!
//! **handoff** is `handoff run --wait --json true`, process start to exit, in a
//! repository whose user configuration says `[engine] kind = "kubernetes"` with the
//! node's kubeconfig and a namespace this bench makes (as `tests/k8s_e2e.rs` does).
//! **raw** is what one would do by hand with kube-rs, in this process: tar the
//! repository's checkout (its files and `.git`), create a Job of the same image whose
//! pod keeps running, wait until the pod runs, stream the archive into it through
//! `exec` (`head -c N | tar -x`: the 1.20 apiserver speaks only version 4 of the
//! streaming protocol, which cannot close stdin), exec `true`, exec `cat` of one small
//! file, delete the Job with propagation and wait until its pod is gone.
//!
//! Then **many at once** (`HANDOFF_BENCH_TASKS`, default 40; 0 skips it): that many
//! `handoff run true` started together with `max_parallel` as large, `handoff list
//! --json` in a loop meanwhile until all have ended (its latency is the front-end's
//! responsiveness), against as many raw Jobs of `true` created together, from the
//! first create to the last Job succeeded.
//!
//! Rounds: `HANDOFF_BENCH_ROUNDS` (default 2), interleaved, after one warm-up each.
//! Root is required (the node). The table goes to stdout and to
//! `target/bench/kube_start.md`.

#[path = "../tests/common/mod.rs"]
mod testkit;

#[path = "../tests/common/k8s.rs"]
mod k8s;

mod common;
use common::*;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{
    Api, AttachParams, AttachedProcess, DeleteParams, ListParams, PostParams, PropagationPolicy,
};
use serde_json::Value;
use testkit::Repo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Where both sides' Jobs run.
const NAMESPACE: &str = "handoff-bench";

fn main() {
    let rounds = rounds(2);
    let image = testkit::image().to_string();
    // Handoff's own containers of a pod run the tools image: the machine's busybox.
    let tools = k8s::OneFileImage::new(
        &format!("handoff-bench-tools:{}", std::process::id()),
        "bin/busybox",
    );
    eprintln!("kube_start: starting a Kubernetes node");
    let node = k8s::Node::start();
    eprintln!("kube_start: node started in {:.1}s", node.start_secs);
    node.load(&[&image, &tools.0]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("cannot build a tokio runtime");
    let client = rt.block_on(node.client());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": NAMESPACE }
    }))
    .unwrap();
    rt.block_on(namespaces.create(&PostParams::default(), &ns))
        .unwrap_or_else(|e| panic!("cannot create the namespace {NAMESPACE}: {e}"));
    let ctx = Ctx {
        rt: &rt,
        jobs: Api::namespaced(client.clone(), NAMESPACE),
        pods: Api::namespaced(client, NAMESPACE),
        image: &image,
    };

    let mut rows = Vec::new();
    let mut serial = 0;
    for files in [5_000, 50_000] {
        eprintln!("kube_start: making a repository of {files} files");
        let repo = fixture(files, &node.kubeconfig, &tools.0);
        eprintln!("kube_start: {files}: warm-up");
        let mut failed = Vec::new();
        ctx.handoff_until_done(&repo, &mut failed);
        serial += 1;
        ctx.raw_run(&repo, serial);
        let mut handoff = Vec::new();
        let mut phases = Vec::new();
        let mut raw = Vec::new();
        let mut raw_steps = Vec::new();
        for round in 1..=rounds {
            let (wall, p) = ctx.handoff_until_done(&repo, &mut failed);
            handoff.push(wall);
            phases.push(p);
            serial += 1;
            let (wall, steps) = ctx.raw_run(&repo, serial);
            raw.push(wall);
            raw_steps.push(steps);
            eprintln!(
                "kube_start: {files}: round {round}/{rounds}: handoff {:.0} ms, raw {:.0} ms",
                handoff.last().unwrap(),
                raw.last().unwrap()
            );
        }
        rows.push(Row {
            files,
            handoff,
            phases,
            raw,
            raw_steps,
            failed,
        });
    }
    let left = ctx.settle();
    assert!(left.is_empty(), "left in {NAMESPACE}: {left:?}");

    let tasks = tasks(40);
    let many = (tasks > 0).then(|| {
        eprintln!("kube_start: {tasks} tasks at once");
        let m = ctx.many_at_once(tasks, &node.kubeconfig, &tools.0);
        let left = ctx.settle();
        assert!(left.is_empty(), "left in {NAMESPACE}: {left:?}");
        m
    });

    let mut table = render(&rows, rounds, &image);
    if let Some(m) = &many {
        table.push_str(&render_many(m, tasks));
    }
    println!("{table}");
    write_table("kube_start", &table);
    drop(rt);
    // Stops the node and checks that nothing of it is left on the machine.
    drop(node);
}

/// Deletion of a Job with its pods.
fn propagate() -> DeleteParams {
    DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..Default::default()
    }
}

/// One round of many tasks at once.
struct Many {
    /// From the first `run` to `list` showing every task ended.
    all_done: f64,
    /// From the first `run` to the last `run` returning.
    submitted: f64,
    run_ms: Vec<f64>,
    list_ms: Vec<f64>,
    /// The most tasks `list` showed running at once.
    peak_running: usize,
    /// States other than `done`, with their errors.
    not_done: Vec<String>,
    /// The raw Jobs: from the first create to the last one succeeded.
    raw: f64,
}

fn render_many(m: &Many, tasks: usize) -> String {
    format!(
        "\n## {tasks} tasks at once on Kubernetes (`max_parallel = {tasks}`)\n\n\
         `handoff run true` × {tasks} started together, `handoff list --json` in a loop \
         until all ended; raw: {tasks} Jobs of `true` created together, until the last \
         succeeded.\n\n\
         | handoff: all ended | last `run` returned | raw: all succeeded | handoff / raw | \
         most running at once | `run` p50 / p99 | `list` p50 / p99 ({} calls) | not done |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|\n\
         | {:.1} s | {:.1} s | {:.1} s | **{:.2}x** | {} | {:.0} / {:.0} ms | {:.0} / {:.0} ms | {} |\n",
        m.list_ms.len(),
        m.all_done / 1000.0,
        m.submitted / 1000.0,
        m.raw / 1000.0,
        m.all_done / m.raw,
        m.peak_running,
        percentile(&m.run_ms, 50.0),
        percentile(&m.run_ms, 99.0),
        percentile(&m.list_ms, 50.0),
        percentile(&m.list_ms, 99.0),
        if m.not_done.is_empty() {
            "none".to_string()
        } else {
            m.not_done.join("; ")
        }
    )
}

struct Row {
    files: usize,
    /// Wall times (ms) of `handoff run --wait`, and each run's `phases_ms`.
    handoff: Vec<f64>,
    phases: Vec<BTreeMap<String, f64>>,
    raw: Vec<f64>,
    /// Each raw run's steps (ms), in order.
    raw_steps: Vec<Vec<(&'static str, f64)>>,
    /// The messages of `handoff run`s that did not end `done` (run again, not counted).
    failed: Vec<String>,
}

/// A repository of `files` committed files (`src/m*/f*.rs`, a few hundred bytes each)
/// and one uncommitted change, whose user configuration points Handoff at the node.
fn fixture(files: usize, kubeconfig: &Path, tools: &str) -> Repo {
    let repo = testkit::many_files(files);
    repo.write_user_config(&format!(
        "[engine]\nkind = \"kubernetes\"\nkubeconfig = \"{}\"\nnamespace = \"{NAMESPACE}\"\n\
         tools_image = \"{tools}\"\n",
        kubeconfig.display()
    ));
    repo
}

struct Ctx<'a> {
    rt: &'a tokio::runtime::Runtime,
    jobs: Api<Job>,
    pods: Api<Pod>,
    image: &'a str,
}

impl Ctx<'_> {
    /// [`Self::handoff_run`] until a run ends `done` (at most three tries); the
    /// messages of the others go to `failed`.
    fn handoff_until_done(
        &self,
        repo: &Repo,
        failed: &mut Vec<String>,
    ) -> (f64, BTreeMap<String, f64>) {
        for _ in 0..3 {
            match self.handoff_run(repo) {
                Ok(done) => return done,
                Err(e) => {
                    eprintln!("kube_start: handoff run did not end done: {e}");
                    failed.push(e);
                }
            }
        }
        panic!("three handoff runs in a row did not end done: {failed:?}");
    }

    /// `handoff run --wait --json true`, timed (ms), with the record's `phases_ms`;
    /// then, not timed, `handoff rm` and a wait until the namespace is empty again (the
    /// turn's pod goes by propagation, after `run` has returned). A run that does not
    /// end `done` is removed too, and its message returned.
    fn handoff_run(&self, repo: &Repo) -> Result<(f64, BTreeMap<String, f64>), String> {
        let started = Instant::now();
        let out = repo.handoff(&["run", "--wait", "--json", "true"]);
        let wall = ms(started.elapsed());
        let record: Option<Value> = serde_json::from_slice(&out.stdout).ok();
        let done = record.as_ref().is_some_and(|r| r["state"] == "done");
        if !done {
            for id in repo.task_ids() {
                let _ = repo.handoff(&["rm", &id.to_string(), "--delete-branch"]);
            }
            let left = self.settle();
            assert!(
                left.is_empty(),
                "left in {NAMESPACE} after a task: {left:?}"
            );
            let stderr = String::from_utf8_lossy(&out.stderr);
            let last = stderr.lines().last().unwrap_or("").to_string();
            return Err(match record {
                Some(r) => format!("state {}: {last}", r["state"]),
                None => last,
            });
        }
        let record = record.unwrap();
        let phases = phases_of(&record);
        let id = record["id"].as_u64().unwrap().to_string();
        let rm = repo.handoff(&["rm", &id, "--delete-branch"]);
        assert!(
            rm.status.success(),
            "{}",
            String::from_utf8_lossy(&rm.stderr)
        );
        let left = self.settle();
        assert!(
            left.is_empty(),
            "left in {NAMESPACE} after a task: {left:?}"
        );
        Ok((wall, phases))
    }

    /// [`Many`]: `tasks` × `handoff run true` in a fresh repository, then as many raw
    /// Jobs.
    fn many_at_once(&self, tasks: usize, kubeconfig: &Path, tools: &str) -> Many {
        let repo = Repo::new(&[("a.txt", "a\n")], "");
        repo.write_user_config(&format!(
            "max_parallel = {tasks}\n[engine]\nkind = \"kubernetes\"\nkubeconfig = \"{}\"\n\
             namespace = \"{NAMESPACE}\"\ntools_image = \"{tools}\"\n",
            kubeconfig.display()
        ));
        let started = Instant::now();
        let started = &started;
        let repo = &repo;
        let (run_ms, submitted, list_ms, peak_running, listed) = std::thread::scope(|scope| {
            let runs: Vec<_> = (0..tasks)
                .map(|_| {
                    scope.spawn(move || {
                        let t = Instant::now();
                        let out = repo.handoff(&["run", "true"]);
                        assert!(
                            out.status.success(),
                            "handoff run: {}",
                            String::from_utf8_lossy(&out.stderr)
                        );
                        (ms(t.elapsed()), ms(started.elapsed()))
                    })
                })
                .collect();
            let mut list_ms = Vec::new();
            let mut peak = 0;
            let deadline = Instant::now() + Duration::from_secs(1800);
            let listed = loop {
                let t = Instant::now();
                let out = repo.handoff(&["list", "--json"]);
                list_ms.push(ms(t.elapsed()));
                let listed: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
                    panic!("list: {e}: {}", String::from_utf8_lossy(&out.stderr))
                });
                let listed = listed.as_array().cloned().unwrap_or_default();
                let state = |t: &Value| t["state"].as_str().unwrap_or("?").to_string();
                peak = peak.max(listed.iter().filter(|t| state(t) == "running").count());
                let ended = listed
                    .iter()
                    .filter(|t| ["done", "failed", "cancelled"].contains(&state(t).as_str()))
                    .count();
                if ended == tasks {
                    break listed;
                }
                assert!(Instant::now() < deadline, "not all ended: {listed:#?}");
            };
            let mut run_ms = Vec::new();
            let mut submitted: f64 = 0.0;
            for run in runs {
                let (latency, at) = run.join().expect("a run thread panicked");
                run_ms.push(latency);
                submitted = submitted.max(at);
            }
            (run_ms, submitted, list_ms, peak, listed)
        });
        let all_done = ms(started.elapsed());
        let not_done = listed
            .iter()
            .filter(|t| t["state"] != "done")
            .map(|t| format!("#{} {}: {}", t["id"], t["state"], t["error"]))
            .collect();
        for id in repo.task_ids() {
            let _ = repo.handoff(&["rm", &id.to_string(), "--delete-branch"]);
        }
        let left = self.settle();
        assert!(left.is_empty(), "left in {NAMESPACE}: {left:?}");
        let raw = self.rt.block_on(self.raw_many(tasks));
        Many {
            all_done,
            submitted,
            run_ms,
            list_ms,
            peak_running,
            not_done,
            raw,
        }
    }

    /// `tasks` Jobs of `true` created together; ms from the first create to the last
    /// one succeeded. Deleted after (not timed).
    async fn raw_many(&self, tasks: usize) -> f64 {
        let started = Instant::now();
        let names: Vec<String> = (0..tasks).map(|i| format!("raw-many-{i}")).collect();
        let creates = names.iter().map(|name| {
            let job: Job = serde_json::from_value(serde_json::json!({
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": { "name": name },
                "spec": {
                    "backoffLimit": 0,
                    "template": { "spec": {
                        "restartPolicy": "Never",
                        "automountServiceAccountToken": false,
                        "containers": [{
                            "name": "main",
                            "image": self.image,
                            "imagePullPolicy": "Never",
                            "command": ["true"],
                        }]
                    }}
                }
            }))
            .unwrap();
            let jobs = self.jobs.clone();
            async move {
                jobs.create(&PostParams::default(), &job)
                    .await
                    .unwrap_or_else(|e| panic!("raw: create a Job: {e}"));
            }
        });
        futures_util::future::join_all(creates).await;
        let deadline = Instant::now() + Duration::from_secs(1800);
        loop {
            let list = self.jobs.list(&ListParams::default()).await.unwrap();
            let succeeded = list
                .items
                .iter()
                .filter(|j| j.status.as_ref().and_then(|s| s.succeeded).unwrap_or(0) >= 1)
                .count();
            let failed = list
                .items
                .iter()
                .filter(|j| j.status.as_ref().and_then(|s| s.failed).unwrap_or(0) >= 1)
                .count();
            assert_eq!(failed, 0, "raw Jobs failed");
            if succeeded == tasks {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "raw: {succeeded}/{tasks} succeeded"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let took = ms(started.elapsed());
        for name in &names {
            let _ = self.jobs.delete(name, &propagate()).await;
        }
        took
    }

    /// The raw Job, archive, exec in, exec `true`, exec out, delete, timed (ms), and
    /// its steps.
    fn raw_run(&self, repo: &Repo, serial: usize) -> (f64, Vec<(&'static str, f64)>) {
        let started = Instant::now();
        let archive = tar_of(repo.path());
        let mut steps = vec![("tar", ms(started.elapsed()))];
        self.rt
            .block_on(self.raw_job(&format!("raw-{serial}"), &archive, &mut steps));
        (ms(started.elapsed()), steps)
    }

    async fn raw_job(&self, name: &str, archive: &[u8], steps: &mut Vec<(&'static str, f64)>) {
        let mut clock = Instant::now();
        let mut step = |name: &'static str| {
            steps.push((name, ms(clock.elapsed())));
            clock = Instant::now();
        };
        let job: Job = serde_json::from_value(serde_json::json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": { "name": name },
            "spec": {
                "backoffLimit": 0,
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "automountServiceAccountToken": false,
                        "containers": [{
                            "name": "main",
                            "image": self.image,
                            "imagePullPolicy": "Never",
                            // A shell as pid 1 ignores SIGTERM unless it traps it.
                            "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"],
                        }]
                    }
                }
            }
        }))
        .unwrap();
        self.jobs
            .create(&PostParams::default(), &job)
            .await
            .unwrap_or_else(|e| panic!("raw: create the Job: {e}"));
        let pod = self.running_pod(name).await;
        step("create → running");

        let script = format!(
            "mkdir -p /tmp/ws && head -c {} | tar -x -f - -C /tmp/ws",
            archive.len()
        );
        let mut process = self.exec(&pod, &["sh", "-c", &script], true).await;
        let mut stdin = process.stdin().expect("raw: exec without stdin");
        let write = async {
            stdin.write_all(archive).await?;
            stdin.flush().await
        };
        let (written, end) = tokio::join!(write, ended(&mut process));
        written.unwrap_or_else(|e| panic!("raw: sending the archive: {e}"));
        // With protocol v4 the end of stdin closes the whole stream: only now.
        drop(stdin);
        finish(process, end, "unpacking").await;
        step("exec tar -x");

        let mut process = self.exec(&pod, &["true"], false).await;
        let end = ended(&mut process).await;
        finish(process, end, "true").await;
        step("exec true");

        let mut process = self.exec(&pod, &["cat", "/tmp/ws/.git/HEAD"], false).await;
        let end = ended(&mut process).await;
        assert!(
            end.stdout.starts_with(b"ref: refs/heads/"),
            "raw: read back {:?}",
            String::from_utf8_lossy(&end.stdout)
        );
        finish(process, end, "cat").await;
        step("exec cat");

        self.jobs
            .delete(name, &propagate())
            .await
            .unwrap_or_else(|e| panic!("raw: delete the Job: {e}"));
        let deadline = Instant::now() + Duration::from_secs(120);
        while !self.pods_of(name).await.is_empty() {
            assert!(Instant::now() < deadline, "raw: the pod of {name} stays");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        step("delete → pod gone");
    }

    /// The pods of the Job `job`.
    async fn pods_of(&self, job: &str) -> Vec<Pod> {
        self.pods
            .list(&ListParams::default().labels(&format!("job-name={job}")))
            .await
            .unwrap_or_else(|e| panic!("raw: list pods: {e}"))
            .items
    }

    /// The name of the Job's pod once it runs.
    async fn running_pod(&self, job: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(pod) = self
                .pods_of(job)
                .await
                .into_iter()
                .find(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            {
                return pod.metadata.name.unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "raw: the pod of {job} does not run"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn exec(&self, pod: &str, argv: &[&str], stdin: bool) -> AttachedProcess {
        let params = AttachParams::default()
            .stdin(stdin)
            .stdout(true)
            .stderr(true);
        self.pods
            .exec(pod, argv.to_vec(), &params)
            .await
            .unwrap_or_else(|e| panic!("raw: exec {argv:?}: {e}"))
    }

    /// The Jobs and pods in the namespace, after waiting up to a minute for none.
    fn settle(&self) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = self.rt.block_on(async {
                let lp = ListParams::default();
                let mut names = Vec::new();
                for j in self.jobs.list(&lp).await.unwrap().items {
                    names.push(format!("job/{}", j.metadata.name.unwrap_or_default()));
                }
                for p in self.pods.list(&lp).await.unwrap().items {
                    names.push(format!("pod/{}", p.metadata.name.unwrap_or_default()));
                }
                names
            });
            if left.is_empty() || Instant::now() > deadline {
                return left;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// What an exec printed (stdout and stderr, read to their end).
struct Ended {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Reads `process`'s stdout and stderr to their end (the stream makes progress only
/// while they are drained).
async fn ended(process: &mut AttachedProcess) -> Ended {
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let out = process.stdout();
    let err = process.stderr();
    let read_out = async {
        if let Some(mut out) = out {
            let _ = out.read_to_end(&mut stdout).await;
        }
    };
    let read_err = async {
        if let Some(mut err) = err {
            let _ = err.read_to_end(&mut stderr).await;
        }
    };
    tokio::join!(read_out, read_err);
    Ended { stdout, stderr }
}

/// Waits for `process`'s status; panics unless it succeeded.
async fn finish(mut process: AttachedProcess, end: Ended, what: &str) {
    let status = match process.take_status() {
        Some(s) => s.await,
        None => None,
    };
    let _ = process.join().await;
    let ok = status.as_ref().and_then(|s| s.status.as_deref()) == Some("Success");
    assert!(
        ok,
        "raw: {what} failed: {status:?} {}",
        String::from_utf8_lossy(&end.stderr)
    );
}

/// The repository's checkout (files and `.git`, without the tests' configuration
/// folder) as a tar archive.
fn tar_of(repo: &Path) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    for entry in std::fs::read_dir(repo).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == ".no-user-config" {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            builder.append_dir_all(&name, entry.path()).unwrap();
        } else {
            builder.append_path_with_name(entry.path(), &name).unwrap();
        }
    }
    builder.into_inner().unwrap()
}

fn render(rows: &[Row], rounds: usize, image: &str) -> String {
    let mut s = format!(
        "## Task start on Kubernetes: `handoff run --wait` vs kube-rs by hand\n\n\
         Single-node Kubernetes 1.20 (`scripts/k8s-node.sh`); agent `true` in `{image}`; \
         {rounds} interleaved rounds after one warm-up each; median (min–max) ms. raw: \
         tar of the checkout with `.git`, create a Job whose pod sleeps, wait until it \
         runs, exec `head -c N | tar -x` with the archive on stdin, exec `true`, exec \
         `cat` of one small file, delete the Job (propagation) and wait until its pod \
         is gone.\n\n\
         | files | rounds | handoff | raw | handoff / raw |\n|---:|---:|---:|---:|---:|\n"
    );
    let range = |v: &[f64]| {
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        let max = v.iter().copied().fold(0.0, f64::max);
        format!("{:.0} ({min:.0}–{max:.0})", median(v))
    };
    for r in rows {
        s.push_str(&format!(
            "| {} | {rounds} | {} | {} | **{:.2}x** |\n",
            r.files,
            range(&r.handoff),
            range(&r.raw),
            median(&r.handoff) / median(&r.raw)
        ));
    }
    // The usual phases first, then any other the records name.
    let mut names: Vec<String> = ["snapshot", "workspace", "container", "finalize"]
        .iter()
        .map(|p| p.to_string())
        .collect();
    for r in rows {
        for p in r.phases.iter().flat_map(|p| p.keys()) {
            if !names.contains(p) {
                names.push(p.clone());
            }
        }
    }
    s.push_str(
        "\nHandoff's phases (median ms of the records' `phases_ms`; the rest is the \
         agent's run, waiting for it, process start and removals):\n\n| files |",
    );
    for n in &names {
        s.push_str(&format!(" {n} |"));
    }
    s.push_str(" rest |\n|---:|");
    s.push_str(&"---:|".repeat(names.len() + 1));
    s.push('\n');
    for r in rows {
        s.push_str(&format!("| {} |", r.files));
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        s.push_str(&phase_cells(&names, &r.phases, &r.handoff));
    }
    s.push_str("\nraw's steps (median ms):\n\n| files |");
    let steps: Vec<&str> = rows
        .first()
        .and_then(|r| r.raw_steps.first())
        .map(|v| v.iter().map(|(n, _)| *n).collect())
        .unwrap_or_default();
    for n in &steps {
        s.push_str(&format!(" {n} |"));
    }
    s.push_str("\n|---:|");
    s.push_str(&"---:|".repeat(steps.len()));
    s.push('\n');
    for r in rows {
        s.push_str(&format!("| {} |", r.files));
        for n in &steps {
            let v: Vec<f64> = r
                .raw_steps
                .iter()
                .filter_map(|x| x.iter().find(|(k, _)| k == n).map(|(_, v)| *v))
                .collect();
            s.push_str(&format!(" {:.0} |", median(&v)));
        }
        s.push('\n');
    }
    for r in rows {
        for f in &r.failed {
            s.push_str(&format!(
                "\n{} files: a `handoff run` did not end `done` (run again, not counted): {f}\n",
                r.files
            ));
        }
    }
    if let [small, big] = rows {
        s.push_str(&format!(
            "\nhandoff 50k / 5k: {:.2}x; raw 50k / 5k: {:.2}x\n",
            median(&big.handoff) / median(&small.handoff),
            median(&big.raw) / median(&small.raw)
        ));
    }
    s
}
