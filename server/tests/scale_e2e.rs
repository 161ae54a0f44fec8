//! Many tasks on one machine: a hundred tasks queued at once, eight at a time, all
//! brought home with nothing lost. Real Docker, the offline busybox image, the real
//! `handoff` binary, as a user at a terminal would drive it.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const TASKS: usize = 100;
const MAX_PARALLEL: usize = 8;

fn is_active(state: &str) -> bool {
    matches!(state, "starting" | "running" | "finalizing")
}

#[test]
fn a_hundred_queued_tasks_all_come_home_each_with_its_own_file() {
    let started = Instant::now();
    let repo = Repo::new(
        &[("a.txt", "a\n")],
        &format!("max_parallel = {MAX_PARALLEL}\n"),
    );

    // A hundred `handoff run`s, without waiting: each queues its task and starts what
    // fits; the rest wait as `queued`.
    for i in 1..=TASKS {
        let out = repo.handoff(&["run", "--json", &format!("echo task {i} > out-{i}.txt")]);
        assert!(
            out.status.success(),
            "handoff run #{i} failed:\n{}",
            stderr(&out)
        );
        let task: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("handoff run printed no JSON ({e}): {}", stdout(&out)));
        assert_eq!(task["id"], i as u64, "{task:#}");
    }
    let queued_in = started.elapsed();

    // Then any front-end drives the queue: here `handoff list`, as a user checking on
    // the tasks would, until every task has ended. Never more than max_parallel run.
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut most_active = 0;
    let tasks = loop {
        let tasks = repo.json(&["list", "--json"]);
        let tasks = tasks.as_array().expect("a JSON array").clone();
        assert_eq!(tasks.len(), TASKS, "a task went missing from the list");
        let active = tasks
            .iter()
            .filter(|t| is_active(t["state"].as_str().unwrap()))
            .count();
        most_active = most_active.max(active);
        assert!(
            active <= MAX_PARALLEL,
            "{active} tasks active at once, more than max_parallel = {MAX_PARALLEL}"
        );
        let ended = tasks
            .iter()
            .filter(|t| matches!(t["state"].as_str(), Some("done" | "failed" | "cancelled")))
            .count();
        if ended == TASKS {
            break tasks;
        }
        assert!(
            Instant::now() < deadline,
            "only {ended} of {TASKS} tasks ended in time"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let all_done = started.elapsed();

    // Every task is done, its branch holds exactly its own file on top of the
    // repository, and no two tasks share a branch.
    let mut branches = BTreeSet::new();
    for (n, task) in tasks.iter().enumerate() {
        let i = n + 1;
        assert_eq!(task["id"], i as u64);
        assert_eq!(task["state"], "done", "{task:#}");
        assert_eq!(task["exit_code"], 0, "{task:#}");
        let file = format!("out-{i}.txt");
        assert_eq!(changed_files(task), std::slice::from_ref(&file), "{task:#}");
        let branch = task["branch"].as_str().unwrap();
        assert!(branches.insert(branch.to_string()), "branch {branch} twice");
        assert_eq!(files_on(&repo, branch), ["a.txt", file.as_str()]);
        assert_eq!(
            repo.show_bytes(branch, &file),
            format!("task {i}\n").as_bytes()
        );
    }
    let listed = repo.git(&["branch", "--list", "handoff/*"]);
    assert_eq!(listed.lines().count(), TASKS, "{listed}");
    // Nothing stays behind: no container, no scratch folder.
    assert!(containers_of(&repo).is_empty(), "containers left");
    for i in 1..=TASKS {
        let dir = repo.git_dir().join(format!("handoff/tasks/{i}"));
        for scratch in ["layer", "upper", "work"] {
            assert!(
                !dir.join(scratch).exists(),
                "task {i} left its {scratch} folder"
            );
        }
    }
    eprintln!(
        "{TASKS} tasks: queued in {:.1} s, all done after {:.1} s, at most {most_active} active",
        queued_in.as_secs_f64(),
        all_done.as_secs_f64()
    );
}

/// Many tasks ending at once do not make `handoff list` wait for all of them to be
/// brought home: it settles a few (side by side) and shows the rest as last known;
/// every later listing settles more, and `handoff run --wait` or the language server
/// settle all. Nothing is lost either way.
#[test]
fn a_listing_after_many_tasks_ended_at_once_settles_a_few_and_answers() {
    const N: usize = 10;
    let repo = Repo::new(&[("a.txt", "a\n")], &format!("max_parallel = {N}\n"));
    for i in 1..=N {
        // They end together, after the last `run` (which settles what already ended).
        let prompt = format!("sleep 30; echo {i} > out-{i}.txt");
        let out = repo.handoff(&["run", "--json", &prompt]);
        assert!(out.status.success(), "run #{i}: {}", stderr(&out));
    }
    assert!(
        repo.json(&["list", "--json"])
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["state"] == "running"),
        "all ten run at once (the ten runs took longer than the agents sleep?)"
    );
    // All ten have ended in their containers, with nobody yet to bring them home.
    eventually(120, "all ten agents to exit", || {
        exited_containers(&repo).len() == N
    });
    let states = |tasks: &Value| -> Vec<String> {
        tasks
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["state"].as_str().unwrap().to_string())
            .collect()
    };
    let first = repo.json(&["list", "--json"]);
    let done = states(&first).iter().filter(|s| *s == "done").count();
    assert_eq!(done, 4, "one listing settles four: {:?}", states(&first));
    assert!(
        states(&first).iter().all(|s| s == "done" || s == "running"),
        "the others are shown as last known: {:?}",
        states(&first)
    );
    let second = repo.json(&["list", "--json"]);
    assert_eq!(
        states(&second).iter().filter(|s| *s == "done").count(),
        8,
        "{:?}",
        states(&second)
    );
    // The third settles the rest, and every task's work is on its branch.
    let third = repo.json(&["list", "--json"]);
    assert!(
        states(&third).iter().all(|s| s == "done"),
        "{:?}",
        states(&third)
    );
    for task in third.as_array().unwrap() {
        assert_eq!(changed_files(task).len(), 1, "{task:#}");
    }
}
