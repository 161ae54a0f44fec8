//! Task start on each engine a shipped workspace goes to, against that engine's raw
//! baseline, for 5 000 and 50 000 files:
//!
//! - **local, shipped**: the machine's own dockerd with `[engine] workspace =
//!   "shipped"` (the workspace copied in and out through the Engine API);
//! - **TLS**: a private dockerd in its own network namespace on tcp + TLS (the
//!   fixture of `tests/remote_e2e.rs`);
//! - **Podman**: `podman system service` on a unix socket, in a namespace of its own.
//!
//! **handoff** is `handoff run --wait --json true`, process start to exit, on a commit
//! whose base image is already on the engine (one warm-up task makes it). **raw** is
//! what one would do by hand through the same engine's API (bollard, in this process;
//! over TLS from inside the engine's namespace): tar the repository's checkout (its
//! files and `.git`), create a container of the same image running `true` (network
//! none), copy the archive to `/workspace`, start it, wait, copy out what a no-op
//! agent leaves (the list of changes and one small file), remove it.
//!
//! Engines: `HANDOFF_BENCH_ENGINES`, a comma-separated choice of `local`, `tls` and
//! `podman` (default all three).
//!
//! Rounds: `HANDOFF_BENCH_ROUNDS` (default 3), interleaved. Root is required
//! (namespaces). The table goes to stdout and to `target/bench/engine_start.md`.

#[path = "../tests/common/mod.rs"]
mod testkit;

mod common;
use common::*;

use std::collections::{BTreeMap, HashMap};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::Instant;

use bollard::models::{ContainerCreateBody, HostConfig, ResourcesUlimits};
use bollard::query_parameters::{
    DownloadFromContainerOptionsBuilder, RemoveContainerOptionsBuilder,
    UploadToContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;
use serde_json::Value;
use testkit::engine::PrivateEngine;
use testkit::Repo;

fn main() {
    let rounds = rounds(3);
    let image = testkit::image().to_string();
    eprintln!("engine_start: starting a private TLS engine and a Podman service");
    let tls = PrivateEngine::start_with_tls();
    let podman = PrivateEngine::start_podman();
    // This thread (the runtime's only one) joins the TLS engine's namespace, so the
    // raw baseline reaches it over TCP + TLS as Handoff does; unix sockets are not
    // namespaced, so the other engines stay reachable.
    enter_netns(&tls.netns());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("cannot build a tokio runtime");

    let mut rows = Vec::new();
    for files in [5_000, 50_000] {
        eprintln!("engine_start: making a repository of {files} files");
        let repo = fixture(files);
        for kind in chosen_engines() {
            let engine = match kind {
                Kind::Local => None,
                Kind::Tls => Some(&tls),
                Kind::Podman => Some(&podman),
            };
            let docker = rt.block_on(connect(kind, engine));
            configure(&repo, kind, engine);
            let ctx = Ctx {
                rt: &rt,
                docker: &docker,
                image: &image,
                kind,
                engine,
            };
            eprintln!("engine_start: {} {files}: warm-up", kind.name());
            ctx.handoff_run(&repo);
            ctx.raw_run(&repo);
            let mut handoff = Vec::new();
            let mut phases = Vec::new();
            let mut raw = Vec::new();
            for round in 1..=rounds {
                let (wall, p) = ctx.handoff_run(&repo);
                handoff.push(wall);
                phases.push(p);
                raw.push(ctx.raw_run(&repo));
                eprintln!(
                    "engine_start: {} {files}: round {round}/{rounds}: handoff {:.0} ms, raw {:.0} ms",
                    kind.name(),
                    handoff.last().unwrap(),
                    raw.last().unwrap()
                );
            }
            rows.push(Row {
                kind,
                files,
                handoff,
                phases,
                raw,
            });
        }
    }
    assert!(tls.containers().is_empty(), "{:?}", tls.containers());
    assert!(podman.containers().is_empty(), "{:?}", podman.containers());

    let table = render(&rows, rounds, &image);
    println!("{table}");
    write_table("engine_start", &table);
}

struct Row {
    kind: Kind,
    files: usize,
    /// Wall times (ms) of `handoff run --wait`, and each run's `phases_ms`.
    handoff: Vec<f64>,
    phases: Vec<BTreeMap<String, f64>>,
    raw: Vec<f64>,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Local,
    Tls,
    Podman,
}

/// The engines `HANDOFF_BENCH_ENGINES` names, in their usual order.
fn chosen_engines() -> Vec<Kind> {
    let all = [Kind::Local, Kind::Tls, Kind::Podman];
    let Ok(list) = std::env::var("HANDOFF_BENCH_ENGINES") else {
        return all.to_vec();
    };
    let names: Vec<&str> = list.split(',').map(str::trim).collect();
    for n in &names {
        assert!(
            ["local", "tls", "podman"].contains(n),
            "HANDOFF_BENCH_ENGINES: `{n}` is none of local, tls, podman"
        );
    }
    all.into_iter()
        .filter(|k| names.contains(&k.key()))
        .collect()
}

impl Kind {
    fn key(self) -> &'static str {
        match self {
            Kind::Local => "local",
            Kind::Tls => "tls",
            Kind::Podman => "podman",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Local => "local dockerd, shipped",
            Kind::Tls => "remote dockerd, tcp + TLS",
            Kind::Podman => "Podman 4.3, unix socket",
        }
    }
}

fn enter_netns(path: &Path) {
    let file =
        std::fs::File::open(path).unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    // SAFETY: setns(2) on an open namespace file; it changes only this thread.
    let done = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(
        done,
        0,
        "setns {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

/// A repository of `files` committed files (`src/m*/f*.rs`, a few hundred bytes each)
/// and one uncommitted change.
fn fixture(files: usize) -> Repo {
    let repo = testkit::many_files(files);
    repo.give_to_test_user();
    repo
}

/// The user's configuration: which engine, and shipped workspaces on the local one.
fn configure(repo: &Repo, kind: Kind, engine: Option<&PrivateEngine>) {
    let dir = repo.config_home().join("handoff");
    std::fs::create_dir_all(&dir).unwrap();
    let config = match (kind, engine) {
        (Kind::Tls, Some(e)) => format!(
            "[engine]\nhost = \"{}\"\ncert_dir = \"{}\"\n",
            e.tls_host(),
            e.client_certs().display()
        ),
        (Kind::Podman, Some(e)) => format!("[engine]\nhost = \"{}\"\n", e.docker_host()),
        _ => "[engine]\nworkspace = \"shipped\"\n".to_string(),
    };
    std::fs::write(dir.join("config.toml"), config).unwrap();
    repo.give_to_test_user();
}

async fn connect(kind: Kind, engine: Option<&PrivateEngine>) -> Docker {
    let docker = match (kind, engine) {
        (Kind::Tls, Some(_)) => {
            let certs = engine.unwrap().client_certs();
            Docker::connect_with_ssl(
                testkit::engine::TLS_ADDR,
                &certs.join("key.pem"),
                &certs.join("cert.pem"),
                &certs.join("ca.pem"),
                120,
                bollard::API_DEFAULT_VERSION,
            )
        }
        (Kind::Podman, Some(e)) => Docker::connect_with_unix(
            e.docker_host().trim_start_matches("unix://"),
            120,
            bollard::API_DEFAULT_VERSION,
        ),
        _ => Docker::connect_with_defaults(),
    }
    .unwrap_or_else(|e| panic!("{}: cannot address the engine: {e}", kind.name()));
    docker
        .negotiate_version()
        .await
        .unwrap_or_else(|e| panic!("{}: the engine does not answer: {e}", kind.name()))
}

struct Ctx<'a> {
    rt: &'a tokio::runtime::Runtime,
    docker: &'a Docker,
    image: &'a str,
    kind: Kind,
    engine: Option<&'a PrivateEngine>,
}

impl Ctx<'_> {
    fn handoff(&self, repo: &Repo, args: &[&str]) -> std::process::Output {
        match self.engine {
            Some(e) => e.handoff(repo, args),
            None => repo.handoff(args),
        }
    }

    /// `handoff run --wait --json true`, timed (ms), with the record's `phases_ms`;
    /// then `handoff rm`, not timed.
    fn handoff_run(&self, repo: &Repo) -> (f64, BTreeMap<String, f64>) {
        let started = Instant::now();
        let out = self.handoff(repo, &["run", "--wait", "--json", "true"]);
        let wall = ms(started.elapsed());
        let record: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{}: handoff run printed no JSON ({e}): {}",
                self.kind.name(),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        assert_eq!(record["state"], "done", "{record:#}");
        let phases = phases_of(&record);
        let id = record["id"].as_u64().unwrap().to_string();
        let rm = self.handoff(repo, &["rm", &id, "--delete-branch"]);
        assert!(
            rm.status.success(),
            "{}",
            String::from_utf8_lossy(&rm.stderr)
        );
        (wall, phases)
    }

    /// The raw create/copy-in/run/copy-out/remove, timed (ms).
    fn raw_run(&self, repo: &Repo) -> f64 {
        let started = Instant::now();
        let archive = tar_of(repo.path());
        self.rt.block_on(self.raw_container(archive));
        ms(started.elapsed())
    }

    async fn raw_container(&self, archive: Vec<u8>) {
        let podman = self.kind == Kind::Podman;
        let limit = |name: &str| ResourcesUlimits {
            name: Some(name.into()),
            soft: Some(4096),
            hard: Some(4096),
        };
        let body = ContainerCreateBody {
            image: Some(self.image.to_string()),
            cmd: Some(vec!["true".to_string()]),
            working_dir: Some("/workspace".into()),
            host_config: Some(HostConfig {
                network_mode: Some("none".into()),
                // Podman starts nothing without limits it can grant (docs/engines.md).
                ulimits: podman.then(|| vec![limit("nofile"), limit("nproc")]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let d = self.docker;
        let id = d
            .create_container(None, body)
            .await
            .unwrap_or_else(|e| panic!("raw: create: {e}"))
            .id;
        let options = UploadToContainerOptionsBuilder::default().path("/").build();
        d.upload_to_container(&id, Some(options), bollard::body_full(archive.into()))
            .await
            .unwrap_or_else(|e| panic!("raw: copy in: {e}"));
        d.start_container(&id, None)
            .await
            .unwrap_or_else(|e| panic!("raw: start: {e}"));
        let exit = d
            .wait_container(&id, None)
            .next()
            .await
            .expect("raw: no answer to wait")
            .unwrap_or_else(|e| panic!("raw: wait: {e}"));
        assert_eq!(exit.status_code, 0);
        d.container_changes(&id)
            .await
            .unwrap_or_else(|e| panic!("raw: changes: {e}"));
        let options = DownloadFromContainerOptionsBuilder::default()
            .path("/workspace/.git/HEAD")
            .build();
        let mut out = d.download_from_container(&id, Some(options));
        while let Some(chunk) = out.next().await {
            chunk.unwrap_or_else(|e| panic!("raw: copy out: {e}"));
        }
        let options = RemoveContainerOptionsBuilder::default().force(true).build();
        d.remove_container(&id, Some(options))
            .await
            .unwrap_or_else(|e| panic!("raw: remove: {e}"));
    }
}

/// The repository's checkout (files and `.git`, without the tests' configuration
/// folder) as a tar archive under `workspace/`.
fn tar_of(repo: &Path) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    for entry in std::fs::read_dir(repo).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == ".no-user-config" {
            continue;
        }
        let target = Path::new("workspace").join(&name);
        if entry.file_type().unwrap().is_dir() {
            builder.append_dir_all(&target, entry.path()).unwrap();
        } else {
            builder
                .append_path_with_name(entry.path(), &target)
                .unwrap();
        }
    }
    builder.into_inner().unwrap()
}

fn render(rows: &[Row], rounds: usize, image: &str) -> String {
    let mut s = format!(
        "## Task start per engine: `handoff run --wait` vs the engine's raw \
         create/copy-in/run/copy-out/remove\n\n\
         Agent `true` in `{image}`; {rounds} interleaved rounds after one warm-up each; \
         median (min–max) ms. raw: tar of the checkout with `.git`, create, PUT archive, \
         start, wait, GET changes + one small file, remove, through the engine's API.\n\n\
         | engine | files | handoff | raw | handoff / raw |\n|---|---:|---:|---:|---:|\n"
    );
    let range = |v: &[f64]| {
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        let max = v.iter().copied().fold(0.0, f64::max);
        format!("{:.0} ({min:.0}–{max:.0})", median(v))
    };
    let mut by_engine: HashMap<&str, Vec<(usize, f64)>> = HashMap::new();
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {:.2}x |\n",
            r.kind.name(),
            r.files,
            range(&r.handoff),
            range(&r.raw),
            median(&r.handoff) / median(&r.raw)
        ));
        by_engine
            .entry(r.kind.name())
            .or_default()
            .push((r.files, median(&r.handoff)));
    }
    const PHASES: [&str; 4] = ["snapshot", "workspace", "container", "finalize"];
    s.push_str(
        "\nHandoff's phases (median ms of the records' `phases_ms`; the rest is the \
         agent's run, waiting for it, process start and removals):\n\n\
         | engine | files | snapshot | workspace | container | finalize | rest |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        s.push_str(&format!("| {} | {} |", r.kind.name(), r.files));
        s.push_str(&phase_cells(&PHASES, &r.phases, &r.handoff));
    }
    s.push_str("\n| engine | handoff 50k / 5k |\n|---|---:|\n");
    for kind in [Kind::Local, Kind::Tls, Kind::Podman] {
        if let Some(v) = by_engine.get(kind.name()) {
            let at = |n: usize| v.iter().find(|(f, _)| *f == n).map(|(_, m)| *m);
            if let (Some(big), Some(small)) = (at(50_000), at(5_000)) {
                s.push_str(&format!("| {} | {:.2}x |\n", kind.name(), big / small));
            }
        }
    }
    s
}
