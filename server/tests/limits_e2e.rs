//! Bounded resources, with a hostile agent against the real engine: one that runs too
//! long, one that floods its output, one that fills its disk. Each ends with its reason
//! in words and its work so far on its branch, and the front-end's memory stays bounded.

mod common;

use std::process::Command;

use common::*;
use serde_json::Value;

fn run_timed(repo: &Repo, prompt: &str) -> (Value, std::time::Duration, u64) {
    let started = std::time::Instant::now();
    // GNU time's %M: the front-end's peak resident memory, in KiB.
    let out = Command::new("/usr/bin/time")
        .args(["-f", "maxrss=%M"])
        .arg(handoff_bin())
        .args(["run", "--wait", "--json", prompt])
        .current_dir(repo.path())
        .env("XDG_CONFIG_HOME", repo.config_home())
        .output()
        .expect("/usr/bin/time (Debian package `time`) runs handoff");
    let took = started.elapsed();
    let err = stderr(&out);
    let rss: u64 = err
        .lines()
        .find_map(|l| l.strip_prefix("maxrss="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no maxrss in: {err}"));
    let task = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}): {}\n{err}", stdout(&out)));
    (task, took, rss)
}

#[test]
fn an_agent_past_its_timeout_is_stopped_with_its_work_kept() {
    let repo = Repo::new(&[("a.txt", "a\n")], "");
    let config = repo
        .read(".handoff.toml")
        .replace("memory = \"256m\"", "memory = \"256m\"\ntimeout = \"3s\"");
    repo.write(".handoff.toml", &config);
    repo.git(&["commit", "-qam", "a short timeout"]);
    repo.trust();
    let (task, took, _) = run_timed(&repo, "echo started > started.txt; sleep 120");
    assert!(
        took.as_secs() < 60,
        "stopped in time, not after 120 s: {took:?}"
    );
    assert_eq!(task["state"], "failed", "{task:#}");
    let error = task["error"].as_str().unwrap();
    assert!(error.contains("timeout of 3s"), "{error}");
    assert_eq!(task["stopped_for"]["limit"], "timeout");
    assert_eq!(
        repo.show_bytes(task["branch"].as_str().unwrap(), "started.txt"),
        b"started\n"
    );
}

#[test]
fn a_flood_of_output_is_cut_and_never_held_whole_in_memory() {
    let repo = Repo::new(&[("a.txt", "a\n")], "");
    // 200 MB of output in lines, then 100 MB with no newline at all.
    let (task, _, rss_kib) = run_timed(
        &repo,
        "yes 'a line of output that goes on' | head -c 200000000; head -c 100000000 /dev/zero | tr '\\\\0' x; echo done > done.txt",
    );
    assert_eq!(task["state"], "done", "{task:#}");
    assert_eq!(
        repo.show_bytes(task["branch"].as_str().unwrap(), "done.txt"),
        b"done\n"
    );
    let log = repo.git_dir().join("handoff/tasks/1/log");
    let size = std::fs::metadata(&log).unwrap().len();
    assert!(size <= (64 << 20) + 4096, "the log is cut: {size} bytes");
    let text = std::fs::read(&log).unwrap();
    assert!(
        String::from_utf8_lossy(&text[text.len().saturating_sub(200)..]).contains("cut at 64 MiB")
            || size < 64 << 20,
        "the cut is said"
    );
    assert!(
        rss_kib < 200 * 1024,
        "the front-end held the output in memory: {rss_kib} KiB"
    );
}

#[test]
fn an_agent_that_fills_its_disk_limit_is_stopped_with_its_work_so_far() {
    let repo = Repo::new(&[("a.txt", "a\n")], "");
    let config = repo.read(".handoff.toml").replace(
        "memory = \"256m\"",
        "memory = \"256m\"\ndisk_limit = \"20m\"",
    );
    repo.write(".handoff.toml", &config);
    repo.git(&["commit", "-qam", "a small disk limit"]);
    repo.trust();
    let (task, took, _) = run_timed(
        &repo,
        "echo early > early.txt; i=0; while [ $i -lt 600 ]; do head -c 1000000 /dev/zero > f$i; i=$((i+1)); sleep 0.1; done",
    );
    assert!(
        took.as_secs() < 55,
        "stopped, not left to write 600 MB: {took:?}"
    );
    assert_eq!(task["state"], "failed", "{task:#}");
    let error = task["error"].as_str().unwrap();
    assert!(error.contains("disk limit of 20 MiB"), "{error}");
    assert_eq!(
        repo.show_bytes(task["branch"].as_str().unwrap(), "early.txt"),
        b"early\n"
    );
}

/// A repository with a "claude" of the test's own making: a script whose output is
/// Claude Code's stream-json, one model response a second, each with its usage.
fn scripted_claude(limits: &str) -> Repo {
    let repo = Repo::new(&[("a.txt", "a\n")], "");
    repo.write(
        "claude",
        "#!/bin/sh\n\
         echo started > started.txt\n\
         printf '%s\\n' '{\"type\":\"system\",\"subtype\":\"init\",\"session_id\":\"5f0c8a1e-2b7d-4c1a-9e3f-0a1b2c3d4e5f\",\"model\":\"claude-sonnet-4-5\"}'\n\
         i=1; while [ $i -le 30 ]; do\n\
           printf '{\"type\":\"assistant\",\"message\":{\"id\":\"msg_%s\",\"model\":\"claude-sonnet-4-5\",\"usage\":{\"input_tokens\":1000,\"output_tokens\":100000},\"content\":[{\"type\":\"text\",\"text\":\"step %s\"}]}}\\n' $i $i\n\
           echo $i > progress.txt; i=$((i+1)); sleep 1\n\
         done\n",
    );
    std::fs::set_permissions(
        repo.path().join("claude"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let config = format!(
        "{}\n[agents.budgeted]\nimage = \"{}\"\ncommand = [\"/workspace/claude\"]\n{limits}\n",
        repo.read(".handoff.toml"),
        image()
    );
    repo.write(".handoff.toml", &config);
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-qm", "a scripted claude with a budget"]);
    repo.trust();
    repo
}

#[test]
fn an_agent_over_its_turn_budget_is_stopped_with_its_work_so_far() {
    let repo = scripted_claude("max_turns = 3");
    let out = repo.handoff(&["run", "--wait", "--json", "--agent", "budgeted", "work"]);
    let task: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(task["state"], "failed", "{task:#}");
    assert_eq!(task["stopped_for"]["limit"], "turns", "{task:#}");
    let used = task["stopped_for"]["used"].as_u64().unwrap();
    assert!(
        used > 3 && used < 30,
        "stopped soon after the budget: {used}"
    );
    assert!(task["error"].as_str().unwrap().contains("max_turns"));
    assert_eq!(
        repo.show_bytes(task["branch"].as_str().unwrap(), "started.txt"),
        b"started\n"
    );
}

#[test]
fn an_agent_over_its_cost_budget_is_stopped_on_the_estimate_from_its_tokens() {
    // Each response: 100 000 output tokens of a Sonnet model, $1.50 at list price.
    let repo = scripted_claude("max_cost_usd = 4.0");
    let out = repo.handoff(&["run", "--wait", "--json", "--agent", "budgeted", "work"]);
    let task: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(task["state"], "failed", "{task:#}");
    assert_eq!(task["stopped_for"]["limit"], "cost", "{task:#}");
    let used = task["stopped_for"]["used_usd"].as_f64().unwrap();
    assert!(used > 4.0 && used < 20.0, "{used}");
    assert!(
        task["spent"]["cost_usd"].as_f64().unwrap() > 4.0,
        "{task:#}"
    );
}
