//! `setup` before the agent and `check` after it, in the agent's container: the
//! check's result on the record, repair turns for a failing check, a failing setup,
//! and the tool cache shared by tasks with the same lockfiles. Real Docker, the
//! offline busybox image, the real `handoff` binary.

mod common;

use common::*;
use serde_json::Value;

/// An "agent" that repairs when told: the first turn writes first.txt, a turn whose
/// prompt reports a failed check writes fixed.txt.
const REPAIRING_AGENT: &str = r#"
[agents.fixer]
image = "IMAGE"
command = ["sh", "-c", "case \"$HANDOFF_PROMPT\" in *'The check'*) echo fixed > fixed.txt;; *) echo first > first.txt;; esac"]
"#;

fn repo_with(config: &str) -> Repo {
    Repo::new(&[("a.txt", "a\n")], &config.replace("IMAGE", image()))
}

fn run(repo: &Repo, agent: &str, prompt: &str) -> Value {
    let out = repo.handoff(&["run", "--agent", agent, "--wait", "--json", prompt]);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}):\n{}\n{}", stdout(&out), stderr(&out)))
}

#[test]
fn a_failing_check_gets_the_agent_a_repair_turn_with_its_output() {
    let repo = repo_with(&format!(
        "check = \"echo checking; test -f fixed.txt || {{ echo 'fixed.txt is missing' >&2; exit 4; }}\"\n{REPAIRING_AGENT}"
    ));
    let task = run(&repo, "fixer", "make it pass");
    assert_eq!(task["state"], "done", "{task:#}");
    assert_eq!(task["check"]["passed"], true, "{task:#}");
    assert_eq!(task["check_repairs"], 1);
    let turns = task["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 2);
    // The first turn's check failed, and its output reached the repair prompt.
    assert_eq!(turns[0]["check"]["exit_code"], 4);
    assert_eq!(
        turns[0]["check"]["output"],
        "checking\nfixed.txt is missing"
    );
    let repair = turns[1]["prompt"].as_str().unwrap();
    assert!(
        repair.contains("The check `echo checking;") && repair.contains("fixed.txt is missing"),
        "{repair}"
    );
    let branch = task["branch"].as_str().unwrap();
    assert_eq!(files_on(&repo, branch), ["a.txt", "first.txt", "fixed.txt"]);
    // The log tells the story turn by turn.
    let logs = stdout(&repo.handoff(&["logs", "1"]));
    assert!(logs.contains("FAILED (exit code 4)"), "{logs}");
    assert!(logs.contains("passed"), "{logs}");
}

#[test]
fn a_check_that_keeps_failing_leaves_the_task_done_with_the_failure_shown() {
    let repo = repo_with(&format!(
        "check = \"echo never; exit 1\"\ncheck_retries = 2\n{REPAIRING_AGENT}"
    ));
    let out = repo.handoff(&["run", "--agent", "fixer", "--wait", "make it pass"]);
    let printed = stdout(&out);
    assert!(
        printed.contains("check `echo never; exit 1` FAILED (exit code 1) after 2 repair turns"),
        "{printed}"
    );
    let task = repo.task(1);
    assert_eq!(task["state"], "done");
    assert_eq!(task["check"]["passed"], false);
    assert_eq!(task["turns"].as_array().unwrap().len(), 3);
    // Still a branch with everything the agent did.
    assert_eq!(
        files_on(&repo, task["branch"].as_str().unwrap()),
        ["a.txt", "first.txt", "fixed.txt"]
    );
    let shown = stdout(&repo.handoff(&["show", "1"]));
    assert!(shown.contains("    | never"), "{shown}");
}

#[test]
fn a_failing_setup_fails_the_task_before_the_agent_runs() {
    let repo = repo_with("setup = \"echo 'npm ERR! no lockfile' >&2; exit 3\"\n");
    let task = run(&repo, "shell", "echo ran > ran.txt");
    assert_eq!(task["state"], "failed");
    let error = task["error"].as_str().unwrap();
    assert!(
        error.contains(
            "the setup command `echo 'npm ERR! no lockfile' >&2; exit 3` failed with exit code 3"
        ) && error.contains("npm ERR! no lockfile"),
        "{error}"
    );
    assert_eq!(files_on(&repo, task["branch"].as_str().unwrap()), ["a.txt"]);
}

#[test]
fn setup_runs_before_the_agent_and_its_cache_is_shared_by_tasks_with_the_same_lockfiles() {
    let repo = repo_with(
        "setup = \"echo installed >> $HANDOFF_CACHE/installs && mkdir -p $npm_config_cache\"\n",
    );
    let seen = |task: &Value| {
        String::from_utf8(repo.show_bytes(task["branch"].as_str().unwrap(), "seen.txt")).unwrap()
    };
    // The agent reads the cache but cannot write it: no task can poison the next.
    let prompt =
        "cat $HANDOFF_CACHE/installs > seen.txt; echo poison >> $HANDOFF_CACHE/installs; true";
    let first = run(&repo, "shell", prompt);
    assert_eq!(first["state"], "done", "{first:#}");
    assert_eq!(seen(&first), "installed\n");
    let second = run(&repo, "shell", prompt);
    assert_eq!(seen(&second), "installed\ninstalled\n", "the same cache");
    // Another lockfile: another cache.
    repo.write("package-lock.json", "{\"lockfileVersion\": 3}\n");
    let third = run(&repo, "shell", prompt);
    assert_eq!(seen(&third), "installed\n");
    // The cache is the repository's, beside its tasks, owned by the agent.
    let caches: Vec<_> = std::fs::read_dir(repo.git_dir().join("handoff/cache"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    assert_eq!(caches.len(), 2, "{caches:?}");
    let installs: Vec<String> = caches
        .iter()
        .map(|c| {
            std::fs::read_to_string(
                repo.git_dir()
                    .join("handoff/cache")
                    .join(c)
                    .join("installs"),
            )
            .unwrap()
        })
        .collect();
    assert!(
        installs.iter().all(|i| !i.contains("poison")),
        "the agent wrote the shared cache: {installs:?}"
    );
}

#[test]
fn the_shell_agent_whose_prompt_is_a_command_gets_no_repair_turn_by_default() {
    let repo = repo_with("check = \"test -f never.txt\"\n");
    let task = run(&repo, "shell", "echo hi > hi.txt");
    assert_eq!(task["state"], "done", "{task:#}");
    assert_eq!(task["check"]["passed"], false);
    assert_eq!(task["check"]["exit_code"], 1);
    assert_eq!(task["check_repairs"], 0);
    assert_eq!(task["turns"].as_array().unwrap().len(), 1);
}
