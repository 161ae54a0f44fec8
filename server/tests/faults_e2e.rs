//! Faults lose nothing: a Docker engine killed in the middle of a task, a front-end
//! killed at every step of starting and finalizing, the repository's disk full while
//! a result comes home, a damaged task record. Each test runs on a private Docker
//! engine of its own (`common::engine`), which it can kill and restart, and checks
//! what the user sees: the branch and its content, `handoff show --json`, `handoff
//! recover`, `handoff list`.
//!
//! Runs as root (namespaces, mounts); no traffic leaves 127.0.0.0/8 (the private
//! engines have no bridge and the agents network `none`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::engine::PrivateEngine;
use common::{eventually, stderr, stdout, task_ids_of, Repo};
use serde_json::Value;

fn state(t: &Value) -> &str {
    t["state"].as_str().unwrap_or("?")
}

fn record_path(repo: &Repo, id: u64) -> PathBuf {
    repo.git_dir().join(format!("handoff/tasks/{id}/task.json"))
}

fn upper_path(repo: &Repo, id: u64) -> PathBuf {
    repo.git_dir().join(format!("handoff/tasks/{id}/upper"))
}

/// Task `id` from a plain `handoff list --json` (which reconciles and finalizes).
fn listed(engine: &PrivateEngine, repo: &Repo, id: u64) -> Value {
    engine
        .json(repo, &["list", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .cloned()
        .unwrap_or(Value::Null)
}

/// Commits on the task's branch since its base: one when the agent did not commit.
fn commits_on_branch(repo: &Repo, task: &Value) -> usize {
    let range = format!(
        "{}..{}",
        task["base_commit"].as_str().unwrap(),
        task["branch"].as_str().unwrap()
    );
    repo.git(&["rev-list", "--count", &range])
        .trim()
        .parse()
        .unwrap()
}

fn assert_nothing_left_on(engine: &PrivateEngine, when: &str) {
    let (containers, volumes) = (engine.containers(), engine.volumes());
    assert!(
        containers.is_empty() && volumes.is_empty(),
        "{when}: containers {containers:?} and volumes {volumes:?} left; dockerd's log:\n{}",
        engine.log()
    );
}

/// What `handoff run --wait` said when the engine it waited on went away.
fn assert_told_the_task_is_kept(engine: &PrivateEngine, id: u64, waited: std::process::Output) {
    let said = stderr(&waited);
    assert!(
        !waited.status.success()
            && said.contains(&engine.docker_host())
            && said.contains(&format!("Task #{id} is kept"))
            && said.contains(&format!("`handoff show {id}`")),
        "{}\nstdout: {}\nstderr: {said}",
        waited.status,
        stdout(&waited)
    );
}

#[test]
fn a_docker_engine_killed_mid_task_and_restarted_brings_the_agents_work_home() {
    let mut engine = PrivateEngine::start();
    let repo = Repo::new(&[("a.txt", "a\n")], "");
    let front = engine
        .handoff_command(repo.path())
        .args(["run", "--wait", "--json", "sleep 4; echo done > f.txt"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    eventually(30, "the agent running", || {
        std::fs::read_to_string(record_path(&repo, 1)).is_ok_and(|s| s.contains("\"running\""))
    });

    engine.kill();
    // The front-end that waited says the engine is gone and that the task is kept.
    assert_told_the_task_is_kept(&engine, 1, front.wait_with_output().unwrap());
    // The agent lives on under its shim, and what it writes lands on the host.
    eventually(20, "the agent to finish on its own", || {
        engine.container_processes().is_empty()
    });
    assert!(upper_path(&repo, 1).join("f.txt").exists());
    // Without the engine, states are shown as last known, and said to be stale.
    let down = engine.handoff(&repo, &["list", "--json"]);
    assert!(down.status.success(), "{}", stderr(&down));
    assert!(stderr(&down).contains("stale"), "{}", stderr(&down));
    let tasks: Value = serde_json::from_slice(&down.stdout).unwrap();
    assert_eq!(state(&tasks[0]), "running", "{tasks:#}");

    engine.restart();
    let t = listed(&engine, &repo, 1);
    assert_eq!(state(&t), "done", "{t:#}");
    let branch = t["branch"].as_str().unwrap();
    assert_eq!(repo.show_bytes(branch, "f.txt"), b"done\n");
    assert_eq!(commits_on_branch(&repo, &t), 1);
    assert_nothing_left_on(&engine, "at the end");
}

#[test]
fn a_docker_engine_crash_that_takes_the_agent_with_it_keeps_the_work_so_far_on_its_branch() {
    let mut engine = PrivateEngine::start();
    let repo = Repo::new(&[("a.txt", "a\n")], "");
    let front = engine
        .handoff_command(repo.path())
        .args([
            "run",
            "--wait",
            "--json",
            "echo partial > p.txt; sleep 120; echo never > f.txt",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    eventually(30, "the agent's first file in the upper folder", || {
        std::fs::read(upper_path(&repo, 1).join("p.txt")).is_ok_and(|b| b == b"partial\n")
    });

    engine.kill_with_containers();
    assert_told_the_task_is_kept(&engine, 1, front.wait_with_output().unwrap());
    engine.restart();
    // Plain commands settle it (two when the front-end had not yet heard that the
    // agent started: one adopts its container, the next finalizes it).
    let mut t = Value::Null;
    eventually(30, "the task settled", || {
        t = listed(&engine, &repo, 1);
        state(&t) == "failed"
    });
    let branch = t["branch"].as_str().unwrap();
    let error = t["error"].as_str().unwrap();
    assert!(
        error.contains(branch),
        "the error says where the work is: {error}"
    );
    assert_eq!(repo.show_bytes(branch, "p.txt"), b"partial\n");
    assert!(!common::files_on(&repo, branch).contains(&"f.txt".to_string()));
    assert_nothing_left_on(&engine, "at the end");
}

#[test]
fn a_front_end_killed_at_any_step_of_starting_or_finalizing_loses_nothing_and_imports_once() {
    let engine = PrivateEngine::start();
    // Turns of one phase (the agent), and of two (a setup, then the agent).
    for (config, turns) in [
        ("", "agent only"),
        ("setup = \"true\"\n", "setup and agent"),
    ] {
        let repo = Repo::new(&[("a.txt", "a\n")], config);
        for (n, point) in handoff::engine::fault::POINTS.iter().enumerate() {
            let id = n as u64 + 1;
            let file = format!("f{id}.txt");
            let when = format!("{turns}, killed at {point}");
            let out = engine.handoff_env(
                &repo,
                &["run", "--wait", "--json", &format!("echo {point} > {file}")],
                &[("HANDOFF_CRASH_AT", point)],
            );
            assert!(
                !out.status.success() && stderr(&out).contains(&format!("dying at {point}")),
                "{when}: handoff run did not die there: {}\n{}",
                out.status,
                stderr(&out)
            );

            // Plain commands settle it: the next front-end takes the dead one's work over.
            let mut t = Value::Null;
            eventually(60, &format!("task #{id} done ({when})"), || {
                t = listed(&engine, &repo, id);
                state(&t) == "done"
            });
            let branch = t["branch"].as_str().unwrap();
            assert_eq!(
                repo.show_bytes(branch, &file),
                format!("{point}\n").as_bytes(),
                "{when}"
            );
            assert_eq!(commits_on_branch(&repo, &t), 1, "{when}: {t:#}");
            assert_eq!(
                t["turns"].as_array().unwrap().len(),
                1,
                "{when}, settled once: {t:#}"
            );
            assert!(t["error"].is_null(), "{when}: {t:#}");
            // What the turn used is gone once its work is on the branch.
            let when = format!("{when}, then settled");
            assert_nothing_left_on(&engine, &when);
            assert!(
                !upper_path(&repo, id).exists(),
                "{when}: the scratch copy of the work is left"
            );
            let base_ref = format!("refs/handoff/base/{id}");
            assert!(
                repo.git(&["for-each-ref", &base_ref]).is_empty(),
                "{when}: {base_ref} is left"
            );
        }
    }
}

#[test]
fn a_docker_engine_that_dies_as_the_agent_starts_loses_none_of_its_first_writes() {
    let mut engine = PrivateEngine::start();
    let repo = Repo::new(&[("a.txt", "a\n")], "");
    // The engine dies the moment the agent has written: the front-end may or may not
    // have heard that the container started. A race, so met a few times.
    for id in 1..=4u64 {
        let file = format!("p{id}.txt");
        let front = engine
            .handoff_command(repo.path())
            .args(["run", "--wait", &format!("echo {id} > {file}; sleep 120")])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let first = upper_path(&repo, id).join(&file);
        let written = format!("{id}\n");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::fs::read_to_string(&first).ok().as_deref() != Some(written.as_str()) {
            assert!(
                std::time::Instant::now() < deadline,
                "the agent never wrote"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        engine.kill_with_containers();
        let heard = std::fs::read_to_string(record_path(&repo, id)).unwrap();
        eprintln!(
            "round {id}: the front-end left the task {}",
            if heard.contains("\"running\"") {
                "running"
            } else {
                "queued"
            }
        );
        assert_told_the_task_is_kept(&engine, id, front.wait_with_output().unwrap());

        engine.restart();
        let mut t = Value::Null;
        eventually(30, &format!("task #{id} settled"), || {
            t = listed(&engine, &repo, id);
            matches!(state(&t), "done" | "failed" | "cancelled")
        });
        assert_eq!(state(&t), "failed", "{t:#}");
        let branch = t["branch"].as_str().unwrap();
        assert!(
            common::files_on(&repo, branch).contains(&file),
            "round {id}: the agent's first file is not on {branch}: {t:#}"
        );
        assert_eq!(repo.show_bytes(branch, &file), written.as_bytes());
        assert_nothing_left_on(&engine, &format!("round {id}"));
    }
}

/// A small disk (a tmpfs the engine unmounts when it goes).
struct SmallDisk {
    path: PathBuf,
}

impl SmallDisk {
    fn mount(engine: &PrivateEngine, size: &str) -> SmallDisk {
        SmallDisk {
            path: engine.tmpfs(size),
        }
    }

    fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes free for ordinary files.
    fn free(&self) -> u64 {
        let fs = rustix::fs::statvfs(self.path()).unwrap();
        fs.f_bavail * fs.f_frsize
    }

    /// `repo`, moved onto this disk (and trusted there).
    fn take(&self, repo: Repo) -> Repo {
        let moved = Repo {
            dir: tempfile::tempdir_in(self.path()).unwrap(),
        };
        let out = Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", repo.path().display()))
            .arg(moved.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        {
            use std::os::unix::fs::PermissionsExt;
            let open = std::fs::Permissions::from_mode(0o755);
            std::fs::set_permissions(moved.path(), open).unwrap();
        }
        moved.give_to_test_user();
        moved.trust();
        moved
    }
}

#[test]
fn a_full_disk_during_finalize_keeps_the_work_and_recover_brings_it_home_once_space_is_back() {
    const MIB: u64 = 1 << 20;
    let engine = PrivateEngine::start();
    let disk = SmallDisk::mount(&engine, "48m");
    let repo = disk.take(Repo::new(&[("a.txt", "a\n")], ""));
    // Room for the agent's 8 MiB (random, so git cannot compress them) and a little
    // more, but not for a second copy of them in the object database.
    let filler = disk.path().join("filler");
    let fill = disk.free().saturating_sub(12 * MIB);
    std::fs::write(&filler, vec![0u8; fill as usize]).unwrap();

    let out = engine.handoff(
        &repo,
        &[
            "run",
            "--wait",
            "--json",
            "head -c 8388608 /dev/urandom > big.bin",
        ],
    );
    assert!(!out.status.success());
    let t: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}): {}\n{}", stdout(&out), stderr(&out)));
    assert_eq!(state(&t), "failed", "{t:#}");
    let error = t["error"].as_str().unwrap();
    let upper = upper_path(&repo, 1);
    let objects = repo.git_dir().join("objects");
    assert!(
        error.contains(&format!(
            "no space left on the disk of {}",
            objects.display()
        )) && error.contains(&format!("kept in {}", upper.display()))
            && error.contains("`handoff recover 1`"),
        "the error says what failed, where the work is and what to run: {error}"
    );
    let kept = std::fs::read(upper.join("big.bin")).unwrap();
    assert_eq!(kept.len(), 8 << 20);
    let show = stdout(&engine.handoff(&repo, &["show", "1"]));
    assert!(show.contains("`handoff recover 1`"), "{show}");

    // Space is back: recover brings the work home, and the kept copy goes.
    std::fs::remove_file(&filler).unwrap();
    let out = engine.handoff(&repo, &["recover", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Recovered task #1"),
        "{}",
        stdout(&out)
    );
    let t = engine.task(&repo, 1);
    let branch = t["branch"].as_str().unwrap();
    assert!(
        repo.show_bytes(branch, "big.bin") == kept,
        "the branch has the agent's file"
    );
    assert_eq!(commits_on_branch(&repo, &t), 1);
    assert!(t["error"].is_null(), "{t:#}");
    assert!(!upper.exists(), "the kept copy goes once the work is home");
    assert_nothing_left_on(&engine, "at the end");
}

#[test]
fn a_damaged_task_record_is_named_and_never_blocks_the_other_tasks() {
    let engine = PrivateEngine::start();
    let repo = Repo::new(&[("a.txt", "a\n")], "");
    for word in ["one", "two", "three"] {
        let out = engine.handoff(&repo, &["run", &format!("echo {word} > {word}.txt")]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    eventually(60, "three tasks done", || {
        engine
            .json(&repo, &["list", "--json"])
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| state(t) == "done")
            .count()
            == 3
    });
    // Damage two: garbage in one, the other cut in half (a disk that lied).
    std::fs::write(record_path(&repo, 1), b"\x00\xff garbage {{").unwrap();
    let whole = std::fs::read(record_path(&repo, 2)).unwrap();
    std::fs::write(record_path(&repo, 2), &whole[..whole.len() / 2]).unwrap();

    // The others are listed, and the damaged ones named with what to do.
    for args in [&["list"][..], &["list", "--json"][..]] {
        let out = engine.handoff(&repo, args);
        assert!(out.status.success(), "handoff {args:?}: {}", stderr(&out));
        for id in [1, 2] {
            let file = record_path(&repo, id).display().to_string();
            assert!(
                stderr(&out).contains(&file) && stderr(&out).contains("damaged"),
                "handoff {args:?} names the damaged {file}: {}",
                stderr(&out)
            );
        }
    }
    let listed = engine.json(&repo, &["list", "--json"]);
    assert_eq!(task_ids_of(&listed), vec![3]);

    // A new task still runs to the end.
    let out = engine.handoff(&repo, &["run", "--wait", "--json", "echo four > four.txt"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let t: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((t["id"].as_u64(), state(&t)), (Some(4), "done"), "{t:#}");
    assert_eq!(
        repo.show_bytes(t["branch"].as_str().unwrap(), "four.txt"),
        b"four\n"
    );

    // Asking for a damaged one says what is wrong, where, and what to do.
    let out = engine.handoff(&repo, &["show", "1"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&record_path(&repo, 1).display().to_string()) && err.contains("damaged"),
        "{err}"
    );
}
