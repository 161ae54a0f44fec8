//! Task start latency: Handoff versus the raw baseline, in one process, interleaved.
//!
//! For each fixture repository (about 100 files, 5 000 files and 50 000 files), both
//! ways of running the trivial agent `true` on the repository are timed, alternately:
//!
//! - **handoff**: the real binary, `handoff run --wait --json true`, from process
//!   start to exit. Its record's `phases_ms` says where the time went.
//! - **raw**: what one would do by hand: `git clone --local` of the repository into
//!   a temp dir, then (through bollard) create a container of the same image running
//!   `true` with the clone bind-mounted at /workspace and no network, start it, wait
//!   for it, remove it; then delete the clone, since Handoff deletes its workspace
//!   before it returns too.
//!
//! Workspaces are overlays on a shared base checkout per commit, so the first task on
//! a commit pays the checkout and the next ones do not. Both are measured and
//! reported apart: **first** runs each follow a fresh commit (a one-file change,
//! committed), so each builds a new base; **steady** runs reuse the base of the last
//! commit. A warm-up round (one of each, on the last commit's base) comes between them
//! and is not counted.
//!
//! On the small repository a third series runs a profile with a `setup` (it makes
//! `node_modules/x/index.js`; the repository has a `package-lock.json`, and the agent
//! checks that the file is there): the first such task, then the steady ones, which
//! may reuse what an earlier setup made (setup snapshots) or run the setup again.
//!
//! The ratios the issue names are printed against their targets:
//! 50k/5k steady ≤ 1.5×, 50k handoff/raw ≤ 1.0×, small handoff/raw ≤ 1.1×, and
//! second task with setup / task without setup ≤ 1.1×.
//!
//! Rounds: `HANDOFF_BENCH_ROUNDS` (default 10 for the small repository, 5 for the
//! others; first-task runs: 3 each). Docker is required: the bench panics if the
//! engine cannot be reached or any run fails, and never prints numbers for runs that
//! did not happen. The table goes to stdout and to `target/bench/task_start.md`.

mod common;
use common::*;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{ListContainersOptionsBuilder, RemoveContainerOptionsBuilder};
use bollard::Docker;
use futures_util::StreamExt;
use serde_json::Value;

/// Label on the raw baseline's containers, so that a failed run leaves none behind.
const RAW_LABEL: &str = "handoff-bench.task-start";

/// The profile with a setup: what it makes, and the agent that checks it is there.
const SETUP_COMMAND: &str = "mkdir -p node_modules/x && echo hi > node_modules/x/index.js";
const SETUP_AGENT_PROMPT: &str = "test -f node_modules/x/index.js";

/// Runs of the first task on a new commit, per repository.
const FIRST_RUNS: usize = 3;

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("cannot build a tokio runtime");
    let docker = rt.block_on(connect());
    let image = build_image();
    let xdg = tempfile::tempdir().expect("cannot create a temp dir for XDG_CONFIG_HOME");
    let label = format!("{RAW_LABEL}={}", std::process::id());

    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut reports = Vec::new();
        for (name, files, default_rounds) in
            [("small", 100, 10), ("5k", 5_000, 5), ("50k", 50_000, 5)]
        {
            let rounds = rounds(default_rounds);
            let with_setup = name == "small";
            eprintln!("task_start: building the {name} repository ({files} files)");
            let repo = Fixture::new(files, &image);
            let ctx = Ctx {
                rt: &rt,
                docker: &docker,
                image: &image,
                xdg: xdg.path(),
                label: &label,
            };
            // The fixture's .handoff.toml names the image: trust it.
            let trusted = ctx.handoff(&repo, &["trust"]);
            assert!(trusted.status.success(), "handoff trust failed");

            // First tasks on a commit: each after a new commit, so each builds a base.
            let mut first = Vec::with_capacity(FIRST_RUNS);
            for n in 1..=FIRST_RUNS {
                repo.commit_change(n);
                let h = ctx.handoff_run(&repo, None, "true");
                eprintln!(
                    "task_start: {name}: first task on commit {n}/{FIRST_RUNS}: {:.0} ms",
                    ms(h.wall)
                );
                first.push(h);
            }

            eprintln!("task_start: {name}: warm-up");
            ctx.handoff_run(&repo, None, "true");
            ctx.raw_run(&repo);
            let setup_first = with_setup.then(|| {
                let s = ctx.handoff_run(&repo, Some("setup"), SETUP_AGENT_PROMPT);
                eprintln!(
                    "task_start: {name}: first task with setup: {:.0} ms",
                    ms(s.wall)
                );
                s
            });
            let mut handoff = Vec::with_capacity(rounds);
            let mut raw = Vec::with_capacity(rounds);
            let mut setup = Vec::new();
            for round in 1..=rounds {
                let h = ctx.handoff_run(&repo, None, "true");
                let r = ctx.raw_run(&repo);
                let s =
                    with_setup.then(|| ctx.handoff_run(&repo, Some("setup"), SETUP_AGENT_PROMPT));
                eprintln!(
                    "task_start: {name}: round {round}/{rounds}: handoff {:.0} ms, raw {:.0} ms{}",
                    ms(h.wall),
                    ms(r.wall),
                    s.as_ref()
                        .map(|s| format!(", with setup {:.0} ms", ms(s.wall)))
                        .unwrap_or_default()
                );
                handoff.push(h);
                raw.push(r);
                setup.extend(s);
            }
            repo.assert_no_leftovers(&ctx);
            reports.push(Report {
                name,
                files: repo.files,
                rounds,
                first,
                handoff,
                raw,
                setup_first,
                setup,
            });
        }
        reports
    }));
    // Whatever happened, no container of ours stays behind.
    rt.block_on(remove_labelled(&docker, &label));
    let reports = match outcome {
        Ok(r) => r,
        Err(panic) => std::panic::resume_unwind(panic),
    };

    let table = render(&reports, &image);
    println!("{table}");
    write_table("task_start", &table);
}

/// The Docker engine, with the API version negotiated (20.10 speaks 1.41).
async fn connect() -> Docker {
    let docker = Docker::connect_with_defaults().unwrap_or_else(|e| {
        panic!("task_start needs a Docker engine, and none can be addressed: {e}")
    });
    let docker = tokio::time::timeout(Duration::from_secs(10), docker.negotiate_version())
        .await
        .unwrap_or_else(|_| panic!("task_start needs a Docker engine: no answer within 10 s"))
        .unwrap_or_else(|e| panic!("task_start needs a Docker engine, and it is unreachable: {e}"));
    docker
        .ping()
        .await
        .unwrap_or_else(|e| panic!("task_start needs a Docker engine; ping failed: {e}"));
    docker
}

/// The busybox + git test image; its tag.
fn build_image() -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/images/busybox-git.sh");
    let out = Command::new("sh")
        .arg(&script)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "building the test image with {} failed:\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let tag = String::from_utf8(out.stdout).expect("image tag is not UTF-8");
    let tag = tag.trim().to_string();
    assert!(!tag.is_empty(), "{} printed no image tag", script.display());
    tag
}

/// A repository in a temp dir with `files` committed files, a `.handoff.toml` whose
/// `shell` profile uses the test image, and one uncommitted change.
struct Fixture {
    dir: tempfile::TempDir,
    /// Tracked files, `.handoff.toml` included.
    files: usize,
}

impl Fixture {
    fn new(files: usize, image: &str) -> Fixture {
        let dir = tempfile::tempdir().expect("cannot create a temp dir");
        let path = dir.path();
        git(path, &["init", "-q", "-b", "main"]);
        std::fs::write(
            path.join(".handoff.toml"),
            format!(
                "default_agent = \"shell\"\n\n[agents.shell]\nimage = \"{image}\"\n\n\
                 [agents.setup]\nimage = \"{image}\"\ncommand = [\"sh\", \"-c\", \"{{prompt}}\"]\n\
                 setup = \"{SETUP_COMMAND}\"\n"
            ),
        )
        .expect("cannot write .handoff.toml");
        // What a setup installs is ignored, as node_modules is in a real project.
        std::fs::write(path.join(".gitignore"), "node_modules/\n").expect("write .gitignore");
        std::fs::write(
            path.join("package-lock.json"),
            "{\n  \"name\": \"bench\",\n  \"lockfileVersion\": 3,\n  \"packages\": {}\n}\n",
        )
        .expect("write package-lock.json");
        git(path, &["add", "-A"]);
        git(path, &["commit", "-q", "-m", "handoff config"]);
        // Committed files besides the generated sources.
        let own = 3;

        // git's own fast-import: much quicker than writing and adding the files.
        let mut script = String::from(
            "commit refs/heads/main\ncommitter Bench <bench@example.com> 0 +0000\n\
             data 9\nfixtures\nfrom refs/heads/main^0\n",
        );
        for i in 0..files - own {
            let content = source_file(i);
            script.push_str(&format!(
                "M 100644 inline src/m{}/f{i}.rs\ndata {}\n{content}\n",
                i / 1000,
                content.len()
            ));
        }
        let mut fi = Command::new("git")
            .args(["fast-import", "--quiet"])
            .current_dir(path)
            .stdin(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run git fast-import: {e}"));
        fi.stdin
            .take()
            .expect("fast-import stdin")
            .write_all(script.as_bytes())
            .expect("cannot feed git fast-import");
        assert!(
            fi.wait().expect("git fast-import").success(),
            "git fast-import failed"
        );
        git(path, &["reset", "-q", "--hard", "main"]);

        let tracked = git(path, &["ls-files"]).lines().count();
        assert_eq!(tracked, files, "fixture has the wrong number of files");
        // The one uncommitted change.
        let changed = path.join("src/m0/f7.rs");
        let mut text = std::fs::read_to_string(&changed).expect("read fixture file");
        text.push_str("// changed by the user, not committed\n");
        std::fs::write(&changed, text).expect("write fixture file");
        assert_eq!(
            git(path, &["status", "--porcelain"]).trim(),
            "M src/m0/f7.rs",
            "fixture should have exactly one uncommitted change"
        );
        Fixture { dir, files }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Commits a change to one file (not the uncommitted one), so that HEAD is a
    /// commit no task has started on yet.
    fn commit_change(&self, n: usize) {
        let file = self.path().join("src/m0/f3.rs");
        let mut text = std::fs::read_to_string(&file).expect("read fixture file");
        text.push_str(&format!("// committed change {n}\n"));
        std::fs::write(&file, text).expect("write fixture file");
        git(
            self.path(),
            &["commit", "-q", "-m", "change", "--", "src/m0/f3.rs"],
        );
        assert_eq!(
            git(self.path(), &["status", "--porcelain"]).trim(),
            "M src/m0/f7.rs",
            "the fixture should still have exactly one uncommitted change"
        );
    }

    /// No task record, workspace, task branch or container is left after a series.
    fn assert_no_leftovers(&self, ctx: &Ctx) {
        let tasks = self.path().join(".git/handoff/tasks");
        let left: Vec<_> = std::fs::read_dir(&tasks)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", tasks.display()))
            .collect();
        assert!(left.is_empty(), "task folders left in {}", tasks.display());
        let branches = git(self.path(), &["branch", "--list", "handoff/*"]);
        assert!(branches.trim().is_empty(), "task branches left: {branches}");
        let git_dir = self
            .path()
            .join(".git")
            .canonicalize()
            .expect("canonical .git");
        let label = format!("handoff.repo={}", git_dir.display());
        let containers = ctx.rt.block_on(list_labelled(ctx.docker, &label));
        assert!(
            containers.is_empty(),
            "handoff left containers: {containers:?}"
        );
    }
}

/// A plausible Rust source file of a few hundred bytes, different for each `i`.
fn source_file(i: usize) -> String {
    format!(
        "//! Module {i}.\n\nuse std::collections::HashMap;\n\n\
         pub fn item_{i}(input: &[u32]) -> HashMap<u32, usize> {{\n    \
         let mut seen = HashMap::new();\n    \
         for (n, value) in input.iter().enumerate() {{\n        \
         seen.entry(*value ^ {i}).or_insert(n);\n    }}\n    seen\n}}\n"
    )
}

/// Shared state of one bench run.
struct Ctx<'a> {
    rt: &'a tokio::runtime::Runtime,
    docker: &'a Docker,
    image: &'a str,
    xdg: &'a Path,
    label: &'a str,
}

struct HandoffRun {
    wall: Duration,
    phases_ms: BTreeMap<String, u64>,
}

struct RawRun {
    wall: Duration,
    clone: Duration,
    container: Duration,
    cleanup: Duration,
}

impl Ctx<'_> {
    fn handoff(&self, repo: &Fixture, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_handoff"))
            .args(args)
            .current_dir(repo.path())
            .env("XDG_CONFIG_HOME", self.xdg)
            .env_remove("HANDOFF_LOG")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", env!("CARGO_BIN_EXE_handoff")))
    }

    /// `handoff run [--agent AGENT] --wait --json PROMPT`, timed; then removes the
    /// task (not timed).
    fn handoff_run(&self, repo: &Fixture, agent: Option<&str>, prompt: &str) -> HandoffRun {
        let mut args = vec!["run"];
        if let Some(agent) = agent {
            args.extend(["--agent", agent]);
        }
        args.extend(["--wait", "--json", prompt]);
        let started = Instant::now();
        let out = self.handoff(repo, &args);
        let wall = started.elapsed();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "handoff {args:?} failed ({}):\nstdout: {stdout}\nstderr: {stderr}",
            out.status
        );
        let record: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("handoff run printed no JSON record ({e}):\nstdout: {stdout}\nstderr: {stderr}")
        });
        assert_eq!(
            record["state"], "done",
            "the task did not succeed: {record:#}"
        );
        assert_eq!(
            record["exit_code"], 0,
            "the agent did not exit 0: {record:#}"
        );
        assert!(
            record["head_commit"].is_string(),
            "no result was imported: {record:#}"
        );
        assert_eq!(
            record["files_changed"],
            serde_json::json!([]),
            "a no-op task changed files: {record:#}"
        );
        let phases_ms: BTreeMap<String, u64> = record["phases_ms"]
            .as_object()
            .unwrap_or_else(|| panic!("the record has no phases_ms: {record:#}"))
            .iter()
            .map(|(phase, v)| {
                let v = v
                    .as_u64()
                    .unwrap_or_else(|| panic!("phases_ms.{phase} is not a number: {record:#}"));
                (phase.clone(), v)
            })
            .collect();
        for phase in ["snapshot", "workspace", "container", "finalize"] {
            assert!(
                phases_ms.contains_key(phase),
                "the record has no phases_ms.{phase}: {record:#}"
            );
        }
        let id = record["id"]
            .as_u64()
            .unwrap_or_else(|| panic!("the record has no id: {record:#}"))
            .to_string();
        let rm = self.handoff(repo, &["rm", &id, "--delete-branch"]);
        assert!(
            rm.status.success(),
            "handoff rm {id} --delete-branch failed:\n{}",
            String::from_utf8_lossy(&rm.stderr)
        );
        HandoffRun { wall, phases_ms }
    }

    /// Clone, container of `true` on it, removal of both; timed.
    fn raw_run(&self, repo: &Fixture) -> RawRun {
        let started = Instant::now();
        let scratch = tempfile::tempdir().expect("cannot create a temp dir for the clone");
        let clone = scratch.path().join("clone");
        let out = Command::new("git")
            .args(["clone", "--local", "--quiet"])
            .arg(repo.path())
            .arg(&clone)
            .output()
            .unwrap_or_else(|e| panic!("cannot run git clone: {e}"));
        assert!(
            out.status.success(),
            "git clone --local failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let clone_time = started.elapsed();

        let container_started = Instant::now();
        self.rt.block_on(self.run_container(&clone));
        let container = container_started.elapsed();

        let cleanup_started = Instant::now();
        scratch
            .close()
            .unwrap_or_else(|e| panic!("cannot remove the clone: {e}"));
        let cleanup = cleanup_started.elapsed();
        RawRun {
            wall: started.elapsed(),
            clone: clone_time,
            container,
            cleanup,
        }
    }

    /// Create, start, wait for and remove a container running `true` on `workspace`.
    async fn run_container(&self, workspace: &Path) {
        let (key, value) = self.label.split_once('=').expect("label has a value");
        let body = ContainerCreateBody {
            image: Some(self.image.to_string()),
            cmd: Some(vec!["true".to_string()]),
            working_dir: Some("/workspace".into()),
            labels: Some(HashMap::from([(key.to_string(), value.to_string())])),
            host_config: Some(HostConfig {
                binds: Some(vec![format!("{}:/workspace", workspace.display())]),
                network_mode: Some("none".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let created = self
            .docker
            .create_container(None, body)
            .await
            .unwrap_or_else(|e| panic!("raw baseline: cannot create the container: {e}"));
        self.docker
            .start_container(&created.id, None)
            .await
            .unwrap_or_else(|e| panic!("raw baseline: cannot start the container: {e}"));
        let exit = self
            .docker
            .wait_container(&created.id, None)
            .next()
            .await
            .unwrap_or_else(|| panic!("raw baseline: the wait stream ended with no answer"))
            .unwrap_or_else(|e| panic!("raw baseline: waiting for the container failed: {e}"));
        assert_eq!(exit.status_code, 0, "raw baseline: `true` did not exit 0");
        let options = RemoveContainerOptionsBuilder::default().force(true).build();
        self.docker
            .remove_container(&created.id, Some(options))
            .await
            .unwrap_or_else(|e| panic!("raw baseline: cannot remove the container: {e}"));
    }
}

/// Ids of all containers carrying `label` (`key=value`).
async fn list_labelled(docker: &Docker, label: &str) -> Vec<String> {
    let filters = HashMap::from([("label", vec![label])]);
    let options = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    docker
        .list_containers(Some(options))
        .await
        .unwrap_or_else(|e| panic!("cannot list containers: {e}"))
        .into_iter()
        .filter_map(|c| c.id)
        .collect()
}

async fn remove_labelled(docker: &Docker, label: &str) {
    for id in list_labelled(docker, label).await {
        let options = RemoveContainerOptionsBuilder::default().force(true).build();
        if let Err(e) = docker.remove_container(&id, Some(options)).await {
            eprintln!("task_start: could not remove container {id}: {e}");
        }
    }
}

struct Report {
    name: &'static str,
    files: usize,
    rounds: usize,
    /// The first task on a new commit (builds the base), one per commit.
    first: Vec<HandoffRun>,
    /// Tasks on a commit that already has its base.
    handoff: Vec<HandoffRun>,
    raw: Vec<RawRun>,
    /// The first task of the profile with a setup (small repository only).
    setup_first: Option<HandoffRun>,
    /// The following ones.
    setup: Vec<HandoffRun>,
}

impl Report {
    fn walls(runs: &[HandoffRun]) -> Vec<f64> {
        runs.iter().map(|x| ms(x.wall)).collect()
    }

    fn steady(&self) -> f64 {
        median(&Self::walls(&self.handoff))
    }

    fn raw(&self) -> f64 {
        median(&self.raw.iter().map(|x| ms(x.wall)).collect::<Vec<_>>())
    }

    fn first(&self) -> f64 {
        median(&Self::walls(&self.first))
    }
}

/// One line of the targets table.
fn target_row(s: &mut String, what: &str, ratio: f64, target: f64) {
    s.push_str(&format!(
        "| {what} | {ratio:.2}x | ≤ {target:.1}x | {} |\n",
        if ratio <= target { "met" } else { "**missed**" }
    ));
}

fn render(reports: &[Report], image: &str) -> String {
    let by_name = |name: &str| reports.iter().find(|r| r.name == name);
    let mut s = String::new();
    s.push_str("## Task start latency: `handoff run --wait` vs raw clone + container\n\n");
    s.push_str(&format!(
        "Agent: `true` in `{image}`; times in ms, process start to exit; p90 by nearest \
         rank. raw = `git clone --local` + create/start/wait/remove a container + delete \
         the clone. Steady: interleaved handoff/raw rounds on a commit whose base exists, \
         after one warm-up round. First: the first task after a new commit (it builds the \
         commit's base checkout). Repositories, workspaces and clones under `{}`.\n\n",
        std::env::temp_dir().display()
    ));

    s.push_str("### Against the targets\n\n| ratio (medians) | measured | target | |\n|---|---:|---:|---|\n");
    if let (Some(big), Some(mid)) = (by_name("50k"), by_name("5k")) {
        target_row(
            &mut s,
            "50k / 5k, steady (a no-op task)",
            big.steady() / mid.steady(),
            1.5,
        );
        s.push_str(&format!(
            "| 50k / 5k, first task on a commit | {:.2}x | – | |\n",
            big.first() / mid.first()
        ));
        target_row(
            &mut s,
            "50k: handoff steady / raw",
            big.steady() / big.raw(),
            1.0,
        );
        s.push_str(&format!(
            "| 50k: handoff first task on a commit / raw | {:.2}x | – | |\n",
            big.first() / big.raw()
        ));
    }
    if let Some(small) = by_name("small") {
        target_row(
            &mut s,
            "small: handoff steady / raw",
            small.steady() / small.raw(),
            1.1,
        );
        if !small.setup.is_empty() {
            target_row(
                &mut s,
                "small: second and later task with setup / task without setup",
                median(&Report::walls(&small.setup)) / small.steady(),
                1.1,
            );
        }
    }

    s.push_str("\n### Steady state: a commit whose base exists\n\n");
    s.push_str(
        "| repo | files | rounds | handoff median | handoff p90 | raw median | raw p90 | handoff/raw (median) |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in reports {
        let h = Report::walls(&r.handoff);
        let w: Vec<f64> = r.raw.iter().map(|x| ms(x.wall)).collect();
        s.push_str(&format!(
            "| {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2}x |\n",
            r.name,
            r.files,
            r.rounds,
            median(&h),
            percentile(&h, 90.0),
            median(&w),
            percentile(&w, 90.0),
            r.steady() / r.raw()
        ));
    }

    s.push_str("\n### First task on a commit (builds the base)\n\n");
    s.push_str(
        "| repo | runs | first median | first max | steady median | raw median | first/raw | first/steady |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in reports {
        let f = Report::walls(&r.first);
        s.push_str(&format!(
            "| {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2}x | {:.2}x |\n",
            r.name,
            f.len(),
            r.first(),
            percentile(&f, 100.0),
            r.steady(),
            r.raw(),
            r.first() / r.raw(),
            r.first() / r.steady()
        ));
    }

    for r in reports.iter().filter(|r| !r.setup.is_empty()) {
        s.push_str(&format!(
            "\n### A profile with `setup` ({} repository)\n\n\
             Setup: `{SETUP_COMMAND}`, with a `package-lock.json` in the repository; the \
             agent checks that `node_modules/x/index.js` is there.\n\n\
             | task | runs | median | p90 | / task without setup |\n|---|---:|---:|---:|---:|\n",
            r.name
        ));
        let steady = r.steady();
        if let Some(first) = &r.setup_first {
            s.push_str(&format!(
                "| first task with setup | 1 | {:.0} | {:.0} | {:.2}x |\n",
                ms(first.wall),
                ms(first.wall),
                ms(first.wall) / steady
            ));
        }
        let w = Report::walls(&r.setup);
        s.push_str(&format!(
            "| second and later tasks with setup | {} | {:.0} | {:.0} | {:.2}x |\n\
             | task without setup | {} | {:.0} | {:.0} | 1.00x |\n",
            w.len(),
            median(&w),
            percentile(&w, 90.0),
            median(&w) / steady,
            r.handoff.len(),
            steady,
            percentile(&Report::walls(&r.handoff), 90.0),
        ));
    }

    s.push_str("\n### Handoff phases (median ms, from the record's `phases_ms`)\n\n");
    let phases: BTreeSet<&str> = reports
        .iter()
        .flat_map(|r| {
            r.handoff
                .iter()
                .chain(&r.first)
                .chain(&r.setup)
                .chain(&r.setup_first)
        })
        .flat_map(|x| x.phases_ms.keys().map(String::as_str))
        .collect();
    // The usual order first, then any other phase the records name.
    const USUAL: [&str; 4] = ["snapshot", "workspace", "container", "finalize"];
    let mut order: Vec<&str> = USUAL.into_iter().filter(|p| phases.contains(p)).collect();
    order.extend(phases.iter().filter(|p| !USUAL.contains(p)).copied());
    s.push_str("| repo | runs |");
    for p in &order {
        s.push_str(&format!(" {p} |"));
    }
    s.push_str(" rest of wall time |\n|---|---|");
    s.push_str(&"---:|".repeat(order.len() + 1));
    s.push('\n');
    for r in reports {
        let series: [(&str, Vec<&HandoffRun>); 4] = [
            ("steady", r.handoff.iter().collect()),
            ("first on a commit", r.first.iter().collect()),
            ("first with setup", r.setup_first.iter().collect()),
            ("later with setup", r.setup.iter().collect()),
        ];
        for (label, runs) in series {
            if runs.is_empty() {
                continue;
            }
            s.push_str(&format!("| {} | {label} |", r.name));
            for p in &order {
                let v: Vec<f64> = runs
                    .iter()
                    .filter_map(|x| x.phases_ms.get(*p).map(|&v| v as f64))
                    .collect();
                if v.is_empty() {
                    s.push_str(" – |");
                } else {
                    s.push_str(&format!(" {:.0} |", median(&v)));
                }
            }
            // Process start, config, ticks, the agent's own run, log follower, removals.
            let rest: Vec<f64> = runs
                .iter()
                .map(|x| ms(x.wall) - x.phases_ms.values().sum::<u64>() as f64)
                .collect();
            s.push_str(&format!(" {:.0} |\n", median(&rest)));
        }
    }

    s.push_str("\n### Raw baseline parts (median ms)\n\n");
    s.push_str(
        "| repo | git clone --local | container create→remove | delete clone |\n\
         |---|---:|---:|---:|\n",
    );
    for r in reports {
        let part = |f: fn(&RawRun) -> Duration| -> f64 {
            let v: Vec<f64> = r.raw.iter().map(|x| ms(f(x))).collect();
            median(&v)
        };
        s.push_str(&format!(
            "| {} | {:.0} | {:.0} | {:.0} |\n",
            r.name,
            part(|x| x.clone),
            part(|x| x.container),
            part(|x| x.cleanup)
        ));
    }
    s
}
