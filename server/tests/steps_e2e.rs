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
    // Each task runs the setup (no environment kept), so the cache is what they share.
    let repo = repo_with(
        "setup = \"echo installed >> $HANDOFF_CACHE/installs && mkdir -p $npm_config_cache\"\nsetup_snapshot = false\n",
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

/// A setup like `npm ci`: counts its runs in the shared cache, installs a dependency
/// into the (ignored) node_modules and a tool config into HOME.
const INSTALLING_SETUP: &str = "setup = \"echo ran >> $HANDOFF_CACHE/setups; mkdir -p node_modules/dep && echo v1 > node_modules/dep/index.js && echo tool > $HOME/.toolrc\"\n";

fn volumes_of(repo: &Repo) -> Vec<String> {
    let key = repo_key(repo);
    let out = std::process::Command::new("docker")
        .args([
            "volume",
            "ls",
            "-q",
            "--filter",
            &format!("name=handoff-{key}"),
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

/// The repository's key in names on the engine (the blob id of its git dir's path).
fn repo_key(repo: &Repo) -> String {
    let git_dir = repo.git_dir();
    let out = std::process::Command::new("git")
        .args(["hash-object", "--stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()
                .unwrap()
                .write_all(git_dir.as_os_str().as_encoded_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8_lossy(&out.stdout)[..10].to_string()
}

#[test]
fn a_second_task_starts_from_the_environment_the_first_setup_left() {
    let repo = Repo::new(
        &[
            ("a.txt", "a\n"),
            (".gitignore", "node_modules/\n"),
            ("package-lock.json", "{\"lockfileVersion\": 3}\n"),
        ],
        INSTALLING_SETUP,
    );
    let setups = |repo: &Repo| -> usize {
        let caches = repo.git_dir().join("handoff/cache");
        std::fs::read_dir(&caches)
            .unwrap()
            .flatten()
            .map(|c| std::fs::read_to_string(c.path().join("setups")).unwrap_or_default())
            .map(|t| t.lines().count())
            .sum()
    };
    // The agent sees what the setup installed, then tries to poison it for the next.
    let prompt = "cat node_modules/dep/index.js $HOME/.toolrc > seen.txt; echo poison > node_modules/dep/index.js; echo poison > $HOME/.toolrc";
    let first = run(&repo, "shell", prompt);
    assert_eq!(first["state"], "done", "{first:#}");
    let seen = |t: &Value| {
        String::from_utf8(repo.show_bytes(t["branch"].as_str().unwrap(), "seen.txt")).unwrap()
    };
    assert_eq!(seen(&first), "v1\ntool\n");
    assert_eq!(first["environment"]["reused"], false, "{first:#}");
    assert_eq!(first["environment"]["layered"], true, "{first:#}");
    assert_eq!(setups(&repo), 1);
    // The setup's files never reach the branch, only the agent's.
    assert_eq!(
        files_on(&repo, first["branch"].as_str().unwrap()),
        [".gitignore", "a.txt", "package-lock.json", "seen.txt"]
    );

    let second = run(&repo, "shell", prompt);
    assert_eq!(second["state"], "done", "{second:#}");
    assert_eq!(
        seen(&second),
        "v1\ntool\n",
        "the first agent's writes did not reach the environment"
    );
    assert_eq!(second["environment"]["reused"], true, "{second:#}");
    assert_eq!(second["environment"]["key"], first["environment"]["key"]);
    assert_eq!(setups(&repo), 1, "the second task did not run the setup");

    let listed = repo.json(&["env", "list", "--json"]);
    let envs = listed.as_array().unwrap();
    assert_eq!(envs.len(), 1, "{listed:#}");
    assert_eq!(envs[0]["key"], first["environment"]["key"]);
    assert_eq!(envs[0]["profile"], "shell");
    assert_eq!(envs[0]["files"], 1, "{listed:#}");
    let table = stdout(&repo.handoff(&["env", "list"]));
    assert!(
        table.contains(first["environment"]["key"].as_str().unwrap()),
        "{table}"
    );

    // A changed lockfile is another environment: the setup runs again.
    repo.write(
        "package-lock.json",
        "{\"lockfileVersion\": 3, \"packages\": {}}\n",
    );
    let third = run(&repo, "shell", prompt);
    assert_eq!(third["environment"]["reused"], false, "{third:#}");
    assert_eq!(setups(&repo), 2);
    assert_eq!(
        repo.json(&["env", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Removed, it is made again by the next task.
    let key = first["environment"]["key"].as_str().unwrap();
    repo.write("package-lock.json", "{\"lockfileVersion\": 3}\n");
    let removed = repo.handoff(&["env", "rm", &key[..8]]);
    assert!(removed.status.success(), "{}", stderr(&removed));
    assert!(stdout(&removed).contains(&format!("Removed environment {key}")));
    let fourth = run(&repo, "shell", prompt);
    assert_eq!(fourth["environment"]["reused"], false, "{fourth:#}");
    assert_eq!(setups(&repo), 3);

    // No workspace volume of any phase outlives its task.
    assert_eq!(volumes_of(&repo), Vec::<String>::new());
}

#[test]
fn a_setup_that_changes_tracked_files_runs_every_time_and_says_why() {
    let repo = repo_with("setup = \"echo generated > a.txt; echo ran >> $HANDOFF_CACHE/setups\"\n");
    let first = run(&repo, "shell", "cat a.txt > seen.txt");
    assert_eq!(first["state"], "done", "{first:#}");
    assert_eq!(
        first["environment"]["not_kept"], "the setup changed a.txt, which the repository tracks",
        "{first:#}"
    );
    assert_eq!(first["environment"]["layered"], false);
    // As before environments: the agent worked on the setup's workspace.
    let branch = first["branch"].as_str().unwrap();
    assert_eq!(repo.show_bytes(branch, "seen.txt"), b"generated\n");
    let second = run(&repo, "shell", "true");
    assert_eq!(second["environment"]["reused"], false, "{second:#}");
    assert!(repo
        .json(&["env", "list", "--json"])
        .as_array()
        .unwrap()
        .is_empty());
    let shown = stdout(&repo.handoff(&["show", "2"]));
    assert!(
        shown.contains(
            "  env      setup not kept: the setup changed a.txt, which the repository tracks"
        ),
        "{shown}"
    );
}

#[test]
fn env_warm_makes_the_environment_without_a_task_and_the_next_task_starts_from_it() {
    let repo = Repo::new(
        &[("a.txt", "a\n"), (".gitignore", "node_modules/\n")],
        INSTALLING_SETUP,
    );
    let warmed = repo.handoff(&["env", "warm"]);
    assert!(
        warmed.status.success(),
        "{}\n{}",
        stdout(&warmed),
        stderr(&warmed)
    );
    let said = stdout(&warmed);
    assert!(
        said.starts_with("Environment ") && said.contains("is ready"),
        "{said}"
    );
    // The warm-up leaves no task and no branch behind.
    assert!(repo
        .json(&["list", "--json"])
        .as_array()
        .unwrap()
        .is_empty());
    assert!(!repo
        .git(&["branch", "--list", "handoff/*"])
        .contains("handoff/"));
    let again = repo.handoff(&["env", "warm"]);
    assert!(
        stdout(&again).contains("is up to date"),
        "{}",
        stdout(&again)
    );

    let task = run(&repo, "shell", "cat node_modules/dep/index.js > seen.txt");
    assert_eq!(task["state"], "done", "{task:#}");
    assert_eq!(task["environment"]["reused"], true, "{task:#}");
    assert_eq!(
        repo.show_bytes(task["branch"].as_str().unwrap(), "seen.txt"),
        b"v1\n"
    );

    // A profile without setup has nothing to warm.
    let none = Repo::new(&[("a.txt", "a\n")], "");
    let out = none.handoff(&["env", "warm"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("has no setup"), "{}", stderr(&out));
}
