//! The task engine end to end: the real `handoff` binary, a real Docker engine, real
//! git repositories. Each test reads as the user story it checks.

mod common;

use std::process::Command;

use common::*;
use serde_json::Value;

fn state(t: &Value) -> &str {
    t["state"].as_str().unwrap()
}

#[test]
fn a_delegated_shell_task_comes_back_as_a_branch_from_a_snapshot_of_uncommitted_work() {
    let repo = Repo::new(&[("a.txt", "hello\nworld\n"), ("keep.txt", "k\n")], "");
    // Uncommitted and untracked work the agent must see; an ignored file it must not.
    repo.write("a.txt", "hello\nworld\nuncommitted\n");
    repo.write("new.txt", "untracked\n");
    repo.write(".gitignore", "*.log\n");
    repo.write("secret.log", "ignored\n");
    let status_before = repo.git(&["status", "--porcelain"]);

    let t = repo.run_wait(
        "sed -i s/world/WORLD/ a.txt && cat new.txt > seen.txt && ls > listing.txt && echo agent-output",
    );

    assert_eq!(state(&t), "done", "{t:#}");
    let branch = t["branch"].as_str().unwrap();
    assert!(branch.starts_with("handoff/1-"), "{branch}");
    assert_eq!(
        repo.show_bytes(branch, "a.txt"),
        b"hello\nWORLD\nuncommitted\n"
    );
    assert_eq!(repo.show_bytes(branch, "seen.txt"), b"untracked\n");
    let listing = String::from_utf8(repo.show_bytes(branch, "listing.txt")).unwrap();
    assert!(
        !listing.contains("secret.log"),
        "ignored files stay out: {listing}"
    );
    // Base is the snapshot; head is its descendant on the branch.
    let base = t["base_commit"].as_str().unwrap();
    let head = t["head_commit"].as_str().unwrap();
    assert_eq!(repo.git(&["rev-parse", branch]).trim(), head);
    assert_eq!(repo.git(&["rev-parse", &format!("{head}~1")]).trim(), base);
    assert_eq!(changed_files(&t), ["a.txt", "listing.txt", "seen.txt"]);
    assert!(t["error"].is_null());
    // The user's working tree, index and HEAD are as they were.
    assert_eq!(repo.git(&["status", "--porcelain"]), status_before);
    assert_eq!(repo.read("a.txt"), "hello\nworld\nuncommitted\n");
    // The output is in the log, the diff is the branch's.
    assert!(stdout(&repo.handoff(&["logs", "1"])).contains("agent-output"));
    let diff = stdout(&repo.handoff(&["diff", "1"]));
    assert!(diff.contains("-world\n+WORLD"), "{diff}");
    // The container is gone once the work is home.
    assert!(containers_of(&repo).is_empty());
}

#[test]
fn the_agent_runs_unprivileged_offline_with_the_prompt_in_env_and_file() {
    let repo = Repo::new(&[("a.txt", "a\n")], "");
    let t = repo.run_wait(
        "id -u > uid.txt; grep CapEff /proc/self/status > caps.txt; ls /sys/class/net > net.txt; \
         echo \"$HANDOFF_PROMPT\" | head -c 20 > env.txt; head -c 20 \"$HANDOFF_PROMPT_FILE\" > file.txt; \
         echo $HOME > home.txt; touch $HOME/writable",
    );
    assert_eq!(state(&t), "done", "{t:#}");
    let b = t["branch"].as_str().unwrap();
    let uid = String::from_utf8(repo.show_bytes(b, "uid.txt")).unwrap();
    assert_ne!(uid.trim(), "0", "agent must not run as root");
    assert_eq!(
        repo.show_bytes(b, "caps.txt"),
        b"CapEff:\t0000000000000000\n"
    );
    assert_eq!(
        repo.show_bytes(b, "net.txt"),
        b"lo\n",
        "network none: loopback only"
    );
    assert_eq!(repo.show_bytes(b, "env.txt"), b"id -u > uid.txt; gre");
    assert_eq!(repo.show_bytes(b, "file.txt"), b"id -u > uid.txt; gre");
    assert_eq!(repo.show_bytes(b, "home.txt"), b"/home/agent\n");
}

#[test]
fn a_failing_agent_keeps_its_partial_work_and_says_why() {
    let repo = Repo::new(&[("a.txt", "a\n")], "");
    let out = repo.handoff(&[
        "run",
        "--wait",
        "echo partial > part.txt; echo oops >&2; exit 3",
    ]);
    assert!(
        !out.status.success(),
        "run --wait must exit non-zero for a failed task"
    );
    assert!(
        stdout(&out).contains("exited with code 3"),
        "{}",
        stdout(&out)
    );
    let t = repo.task(1);
    assert_eq!(state(&t), "failed");
    assert_eq!(t["exit_code"], 3);
    assert!(t["error"].as_str().unwrap().contains("code 3"));
    assert_eq!(
        repo.show_bytes(t["branch"].as_str().unwrap(), "part.txt"),
        b"partial\n"
    );
    assert!(stdout(&repo.handoff(&["logs", "1"])).contains("oops"));
}

#[test]
fn an_agent_out_of_memory_is_reported_as_such_with_its_work_kept() {
    let repo = Repo::new(&[("a.txt", "a\n")], "[agents.hog]\nimage = \"IMAGE\"\ncommand = [\"sh\", \"-c\", \"{prompt}\"]\nmemory = \"32m\"\n".replace("IMAGE", image()).as_str());
    let out = repo.handoff(&[
        "run",
        "--agent",
        "hog",
        "--wait",
        "--json",
        "echo before > before.txt; dd if=/dev/zero of=/dev/null bs=200M count=1",
    ]);
    let t: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(state(&t), "failed", "{t:#}");
    assert_eq!(t["oom_killed"], true, "{t:#}");
    assert!(
        t["error"].as_str().unwrap().contains("out of memory"),
        "{t:#}"
    );
    assert_eq!(
        repo.show_bytes(t["branch"].as_str().unwrap(), "before.txt"),
        b"before\n"
    );
}

#[test]
fn agent_commits_are_kept_and_leftovers_committed_on_top() {
    let repo = Repo::new(&[("a.txt", "a\n")], "");
    let t = repo.run_wait(
        "echo one > one.txt && git add one.txt && git commit -q -m 'agent commit' && echo two > two.txt",
    );
    assert_eq!(state(&t), "done", "{t:#}");
    let b = t["branch"].as_str().unwrap();
    let log = repo.git(&[
        "log",
        "--format=%s|%an",
        &format!("{}..{b}", t["base_commit"].as_str().unwrap()),
    ]);
    let subjects: Vec<&str> = log.lines().collect();
    assert_eq!(subjects.len(), 2, "{log}");
    assert!(
        subjects[1].starts_with("agent commit|Handoff (shell)"),
        "{log}"
    );
    assert_eq!(repo.show_bytes(b, "two.txt"), b"two\n");
}

#[test]
fn crlf_and_non_utf8_files_survive_byte_for_byte() {
    let repo = Repo::new(&[("win.txt", "a\r\nb\r\n")], "");
    let t = repo.run_wait("printf 'a\\r\\nB\\r\\n' > win.txt; printf 'caf\\351\\n' > latin1.txt");
    assert_eq!(state(&t), "done", "{t:#}");
    let b = t["branch"].as_str().unwrap();
    assert_eq!(repo.show_bytes(b, "win.txt"), b"a\r\nB\r\n");
    assert_eq!(repo.show_bytes(b, "latin1.txt"), b"caf\xe9\n");
    let diff = repo.handoff(&["diff", "1"]).stdout;
    let has = |needle: &[u8]| diff.windows(needle.len()).any(|w| w == needle);
    assert!(has(b"-b\r\n+B\r\n"), "{}", String::from_utf8_lossy(&diff));
    assert!(has(b"+caf\xe9\n"), "{}", String::from_utf8_lossy(&diff));
}

#[test]
fn secrets_pass_by_name_and_never_reach_records_or_logs() {
    let secret = "sk-test-0123456789abcdef";
    let repo = Repo::new(
        &[("a.txt", "a\n")],
        &format!(
            "[agents.keyed]\nimage = \"{}\"\ncommand = [\"sh\", \"-c\", \"{{prompt}}\"]\nenv = [\"HANDOFF_TEST_KEY\"]\n",
            image()
        ),
    );
    let out = repo.handoff_env(
        &[
            "run",
            "--agent",
            "keyed",
            "--wait",
            "--json",
            "echo key=$HANDOFF_TEST_KEY; echo \"$HANDOFF_TEST_KEY\" | wc -c > len.txt; \
             echo \"token $HANDOFF_TEST_KEY\" > $HOME/session.txt",
        ],
        &[("HANDOFF_TEST_KEY", secret)],
    );
    let t: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(state(&t), "done", "{t:#}");
    // The agent got the value...
    assert_eq!(
        repo.show_bytes(t["branch"].as_str().unwrap(), "len.txt"),
        format!("{}\n", secret.len() + 1).as_bytes()
    );
    // ...but no record, log or output holds it, nor what the agent left in its HOME
    // (kept for follow-ups and `pull`).
    let session = repo.git_dir().join("handoff/tasks/1/home/session.txt");
    assert_eq!(
        std::fs::read_to_string(&session).unwrap(),
        "token [redacted:HANDOFF_TEST_KEY]\n"
    );
    let logs = stdout(&repo.handoff(&["logs", "1"]));
    assert!(logs.contains("key=[redacted:HANDOFF_TEST_KEY]"), "{logs}");
    for entry in walk(&repo.git_dir().join("handoff")) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{} holds the secret",
            entry.display()
        );
    }
    assert!(!stdout(&out).contains(secret) && !stderr(&out).contains(secret));
    assert_eq!(t["env_names"][0], "HANDOFF_TEST_KEY");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = vec![];
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files.extend(walk(&p));
        } else {
            files.push(p);
        }
    }
    files
}

#[test]
fn cancel_stops_a_running_task_and_keeps_its_partial_work() {
    let repo = Repo::new(&[("a.txt", "a\n")], "");
    let started = repo.json(&["run", "--json", "echo partial > p.txt; sleep 60"]);
    assert_eq!(state(&started), "running", "{started:#}");
    let out = repo.handoff(&["cancel", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let t = repo.task(1);
    assert_eq!(state(&t), "cancelled", "{t:#}");
    assert_eq!(
        repo.show_bytes(t["branch"].as_str().unwrap(), "p.txt"),
        b"partial\n"
    );
    assert!(containers_of(&repo).is_empty());
    // Cancelling again is a clear refusal, not a crash.
    let again = repo.handoff(&["cancel", "1"]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("already ended"),
        "{}",
        stderr(&again)
    );
}

#[test]
fn tasks_beyond_max_parallel_queue_and_start_as_slots_free_even_with_no_front_end() {
    let repo = Repo::new(&[("a.txt", "a\n")], "max_parallel = 2");
    for i in 0..4 {
        let t = repo.json(&["run", "--json", &format!("sleep 1; echo {i} > out.txt")]);
        let want = if i < 2 { "running" } else { "queued" };
        assert_eq!(state(&t), want, "task {i}: {t:#}");
    }
    // Nobody waits. Once the first two have ended (as Docker sees it), the next
    // invocation of any front-end finalizes them and starts the queue.
    eventually(60, "the first two agents to exit", || {
        exited_containers(&repo).len() == 2
    });
    let tasks = repo.json(&["list", "--json"]);
    let states: Vec<&str> = tasks.as_array().unwrap().iter().map(state).collect();
    assert_eq!(states, vec!["done", "done", "running", "running"]);
    eventually(30, "all four tasks done", || {
        let tasks = repo.json(&["list", "--json"]);
        tasks.as_array().unwrap().iter().all(|t| state(t) == "done")
    });
    for i in 0..4 {
        let t = repo.task(i + 1);
        assert_eq!(
            repo.show_bytes(t["branch"].as_str().unwrap(), "out.txt"),
            format!("{i}\n").as_bytes()
        );
    }
}

#[test]
fn a_task_survives_kill_9_of_its_front_end_and_is_finalized_exactly_once_by_racing_front_ends() {
    let repo = Repo::new(&[("a.txt", "a\n")], "");
    let mut child = Command::new(handoff_bin())
        .args(["run", "--wait", "sleep 2; echo survived > s.txt"])
        .current_dir(repo.path())
        .env("XDG_CONFIG_HOME", repo.path().join(".no-user-config"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let record = repo.git_dir().join("handoff/tasks/1/task.json");
    eventually(20, "task running", || {
        std::fs::read_to_string(&record).is_ok_and(|s| s.contains("\"running\""))
    });
    // kill -9: no chance to clean up.
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(containers_of(&repo).len(), 1, "the container goes on");
    eventually(60, "the agent to finish on its own", || {
        exited_containers(&repo).len() == 1
    });

    // Two front-ends wake up at once; both reconcile, one finalizes.
    let a = Command::new(handoff_bin())
        .args(["list", "--json"])
        .current_dir(repo.path())
        .env("XDG_CONFIG_HOME", repo.path().join(".x"))
        .spawn()
        .unwrap();
    let b = Command::new(handoff_bin())
        .args(["list", "--json"])
        .current_dir(repo.path())
        .env("XDG_CONFIG_HOME", repo.path().join(".x"))
        .spawn()
        .unwrap();
    assert!(a.wait_with_output().unwrap().status.success());
    assert!(b.wait_with_output().unwrap().status.success());

    let t = repo.task(1);
    assert_eq!(state(&t), "done", "{t:#}");
    let branch = t["branch"].as_str().unwrap();
    assert_eq!(repo.show_bytes(branch, "s.txt"), b"survived\n");
    let reflog = repo.git(&["reflog", "show", "--format=%gs", branch]);
    assert_eq!(
        reflog.lines().count(),
        1,
        "imported exactly once:\n{reflog}"
    );
    assert!(containers_of(&repo).is_empty());
}

#[test]
fn a_missing_image_fails_the_task_naming_the_image_and_the_fix() {
    let repo = Repo::new(
        &[("a.txt", "a\n")],
        "[agents.ghost]\nimage = \"handoff-test/does-not-exist:1\"\ncommand = [\"true\"]\n",
    );
    let out = repo.handoff(&["run", "--agent", "ghost", "--wait", "anything"]);
    assert!(!out.status.success());
    let t = repo.task(1);
    assert_eq!(state(&t), "failed");
    let err = t["error"].as_str().unwrap();
    assert!(
        err.contains("handoff-test/does-not-exist:1") && err.contains("docker pull"),
        "{err}"
    );
}

#[test]
fn without_docker_the_user_is_told_where_it_was_looked_for_and_the_task_waits() {
    let repo = Repo::new(&[("a.txt", "a\n")], "");
    let dead = [("DOCKER_HOST", "unix:///nonexistent/docker.sock")];
    let out = repo.handoff_env(&["run", "echo hi > hi.txt"], &dead);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("unix:///nonexistent/docker.sock") && err.contains("Docker"),
        "{err}"
    );
    // Nothing is lost: the task is queued and listing still works without Docker.
    let list = repo.handoff_env(&["list", "--json"], &dead);
    assert!(list.status.success(), "{}", stderr(&list));
    let tasks: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(state(&tasks[0]), "queued");
    assert!(stderr(&list).contains("stale"));
    // With Docker back, the next front-end runs it.
    eventually(30, "queued task done once Docker is back", || {
        state(&repo.json(&["list", "--json"])[0]) == "done"
    });
    assert_eq!(
        repo.show_bytes(repo.task(1)["branch"].as_str().unwrap(), "hi.txt"),
        b"hi\n"
    );
}

#[test]
fn bad_input_gets_clear_errors() {
    let plain = tempfile::tempdir().unwrap();
    let out = handoff_in(plain.path(), &["run", "x"], &[]);
    assert!(
        stderr(&out).contains("not inside a git repository"),
        "{}",
        stderr(&out)
    );

    Command::new("git")
        .args(["init", "-q"])
        .current_dir(plain.path())
        .status()
        .unwrap();
    std::fs::write(
        plain.path().join(".handoff.toml"),
        "default_agent = \"shell\"\n",
    )
    .unwrap();
    let out = handoff_in(plain.path(), &["run", "x"], &[]);
    assert!(stderr(&out).contains("no commits yet"), "{}", stderr(&out));

    let repo = Repo::new(&[("a.txt", "a\n")], "");
    repo.write(
        ".handoff.toml",
        "max_parallel = 2\n[agents.shell]\nnetwork = \"wifi\"\n",
    );
    let out = repo.handoff(&["run", "x"]);
    let err = stderr(&out);
    assert!(
        err.contains(".handoff.toml") && err.contains("line 3") && err.contains("wifi"),
        "{err}"
    );

    let repo = Repo::new(&[("a.txt", "a\n")], "");
    let out = repo.handoff(&["run", "--agent", "nope", "x"]);
    assert!(
        stderr(&out).contains("no agent profile named `nope`"),
        "{}",
        stderr(&out)
    );
    let out = repo.handoff(&["show", "42"]);
    assert!(stderr(&out).contains("no task #42"), "{}", stderr(&out));
    let out = repo.handoff(&["run", "   "]);
    assert!(stderr(&out).contains("prompt is empty"), "{}", stderr(&out));
}

#[test]
fn a_one_megabyte_prompt_is_refused_for_argv_and_delivered_by_file() {
    let big = "x".repeat(1 << 20);
    let repo = Repo::new(
        &[("a.txt", "a\n")],
        &format!(
            "[agents.reader]\nimage = \"{}\"\ncommand = [\"sh\", \"-c\", \"wc -c < $HANDOFF_PROMPT_FILE > size.txt; echo ${{HANDOFF_PROMPT:-unset}} > env.txt\"]\n",
            image()
        ),
    );
    // A prompt this size cannot be a command-line argument of handoff itself either:
    // it comes on standard input.
    let out = handoff_stdin(repo.path(), &["run", "--agent", "shell", "-"], &big);
    assert!(stderr(&out).contains("128 KiB"), "{}", stderr(&out));
    let out = handoff_stdin(
        repo.path(),
        &["run", "--agent", "reader", "--wait", "--json", "-"],
        &big,
    );
    let t: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(state(&t), "done", "{t:#}");
    let b = t["branch"].as_str().unwrap();
    assert_eq!(
        repo.show_bytes(b, "size.txt"),
        format!("{}\n", 1 << 20).as_bytes()
    );
    assert_eq!(repo.show_bytes(b, "env.txt"), b"unset\n");
}

#[test]
fn rm_removes_the_task_but_keeps_the_branch_unless_told() {
    let repo = Repo::new(&[("a.txt", "a\n")], "");
    let t1 = repo.run_wait("echo 1 > one.txt");
    let t2 = repo.run_wait("echo 2 > two.txt");
    assert!(repo.handoff(&["rm", "1"]).status.success());
    assert!(repo
        .handoff(&["rm", "2", "--delete-branch"])
        .status
        .success());
    let branches = repo.git(&["branch", "--format=%(refname:short)"]);
    assert!(
        branches.contains(t1["branch"].as_str().unwrap()),
        "{branches}"
    );
    assert!(
        !branches.contains(t2["branch"].as_str().unwrap()),
        "{branches}"
    );
    assert_eq!(repo.json(&["list", "--json"]), serde_json::json!([]));
    assert!(!repo.git_dir().join("handoff/tasks/1").exists());
}

#[test]
fn a_50_000_file_repository_snapshots_and_runs() {
    let repo = Repo::new(&[("seed.txt", "s\n")], "");
    // Build the big tree with git's own fast-import: quicker than 50 000 writes.
    let mut script = String::from(
        "commit refs/heads/main\ncommitter T <t@e> 0 +0000\ndata 3\nbig\nfrom refs/heads/main^0\n",
    );
    for i in 0..50_000 {
        script.push_str(&format!(
            "M 100644 inline d{}/f{i}.txt\ndata {}\nfile {i}\n\n",
            i / 1000,
            format!("file {i}\n").len()
        ));
    }
    let mut fi = Command::new("git")
        .args(["fast-import", "--quiet"])
        .current_dir(repo.path())
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    fi.stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    assert!(fi.wait().unwrap().success());
    repo.git(&["reset", "-q", "--hard", "main"]);
    repo.write("d7/f7777.txt", "changed by the user\n");

    let t = repo.run_wait("cat d7/f7777.txt > seen.txt; ls d49 | wc -l > count.txt");
    assert_eq!(state(&t), "done", "{t:#}");
    let b = t["branch"].as_str().unwrap();
    assert_eq!(repo.show_bytes(b, "seen.txt"), b"changed by the user\n");
    assert_eq!(
        String::from_utf8(repo.show_bytes(b, "count.txt"))
            .unwrap()
            .trim(),
        "1000"
    );
}

#[test]
fn doctor_reports_each_check() {
    // An image no engine has, whatever was built on this machine before.
    let repo = Repo::new(
        &[("a.txt", "a\n")],
        "[agents.claude]\nimage = \"handoff-test/never-built:none\"\n",
    );
    let out = repo.handoff_env(&["doctor"], &[("ANTHROPIC_API_KEY", "")]);
    let text = stdout(&out);
    assert!(text.contains("[ok  ] git repository"), "{text}");
    assert!(text.contains("[ok  ] config valid"), "{text}");
    assert!(
        text.contains("[ok  ] Docker") && text.contains("API 1."),
        "{text}"
    );
    assert!(
        text.contains(&format!("[ok  ] agent `shell`: image {}", image())),
        "{text}"
    );
    assert!(
        text.contains(
            "[warn] agent `claude`: image handoff-test/never-built:none is not in the engine"
        ) && text.contains("fix: `handoff image build claude`"),
        "{text}"
    );
    assert!(
        text.contains("[warn] agent `claude`: no credentials")
            && text.contains("`ANTHROPIC_API_KEY`"),
        "{text}"
    );
    assert!(out.status.success(), "{text}");
}

#[test]
fn submodules_are_left_as_they_are() {
    let sub = Repo::new(&[("lib.txt", "library\n")], "");
    let repo = Repo::new(&[("a.txt", "a\n")], "");
    repo.git(&[
        "-c",
        "protocol.file.allow=always",
        "submodule",
        "add",
        "-q",
        sub.path().to_str().unwrap(),
        "vendor/lib",
    ]);
    repo.git(&["commit", "-qm", "add submodule"]);
    let gitlink = repo.git(&["rev-parse", "HEAD:vendor/lib"]);

    let t = repo.run_wait("echo changed > a.txt; ls vendor > vendor.txt");
    assert_eq!(state(&t), "done", "{t:#}");
    let b = t["branch"].as_str().unwrap();
    assert_eq!(
        repo.git(&["rev-parse", &format!("{b}:vendor/lib")]),
        gitlink
    );
    assert_eq!(changed_files(&t), ["a.txt", "vendor.txt"]);
    // The user's submodule checkout is untouched.
    assert_eq!(repo.read("vendor/lib/lib.txt"), "library\n");
}

/// A profile whose program is named `claude` gets its output read as Claude Code's
/// stream-json: `handoff logs` renders the transcript, and a failure says why in words.
/// The "CLI" here replays a recording of the real one (tests/agents/offline/).
#[test]
fn claude_style_output_is_rendered_as_a_transcript_and_failures_are_explained() {
    let recording = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/agents/offline/claude-stream.jsonl"),
    )
    .unwrap();
    let repo = Repo::new(
        &[("a.txt", "a\n")],
        &format!(
            "[agents.replay]\nimage = \"{}\"\ncommand = [\"/workspace/bin/claude\", \"-p\", \"{{prompt}}\"]\n",
            image()
        ),
    );
    repo.write("recording.jsonl", &recording);
    repo.write(
        "bin/claude",
        "#!/bin/sh\nif [ \"$2\" = fail ]; then\n  echo '{\"type\":\"result\",\"subtype\":\"error_during_execution\",\"is_error\":true,\"result\":\"Invalid API key · Please run /login\"}'\n  exit 1\nfi\ncat /workspace/recording.jsonl\n",
    );
    std::fs::set_permissions(
        repo.path().join("bin/claude"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-qm", "replaying claude"]);

    let out = repo.handoff(&[
        "run",
        "--agent",
        "replay",
        "--wait",
        "--json",
        "write hello",
    ]);
    let t: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(state(&t), "done", "{t:#}");
    let rendered = stdout(&repo.handoff(&["logs", "1"]));
    assert!(
        rendered.contains("▸ "),
        "no tool call rendered:\n{rendered}"
    );
    assert!(
        !rendered.contains("{\"type\""),
        "raw JSON in the transcript:\n{rendered}"
    );
    let raw = stdout(&repo.handoff(&["logs", "1", "--raw"]));
    assert!(raw.contains("{\"type\":\"system\""), "{raw}");

    let out = repo.handoff(&["run", "--agent", "replay", "--wait", "--json", "fail"]);
    let t: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(state(&t), "failed", "{t:#}");
    let err = t["error"].as_str().unwrap();
    assert!(
        err.contains("code 1") && err.to_lowercase().contains("authentication"),
        "{err}"
    );
}

#[test]
fn pull_checks_the_branch_out_where_dir_says() {
    let repo = Repo::new(&[("a.txt", "a\n")], "");
    let task = repo.run_wait("echo pulled > p.txt");
    assert_eq!(state(&task), "done", "{task:#}");
    let elsewhere = tempfile::tempdir().unwrap();
    let dir = elsewhere.path().join("wt");
    let out = repo.handoff(&["pull", "1", "--dir", dir.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(dir.join("p.txt")).unwrap(),
        "pulled\n"
    );
    // -C names the repository, --dir the worktree: both at once.
    let dir2 = elsewhere.path().join("wt2");
    let out = handoff_in(
        elsewhere.path(),
        &[
            "-C",
            repo.path().to_str().unwrap(),
            "pull",
            "1",
            "--dir",
            dir2.to_str().unwrap(),
        ],
        &[("XDG_CONFIG_HOME", repo.config_home().to_str().unwrap())],
    );
    assert!(
        out.status.success() || stderr(&out).contains("already pulled"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn several_attempts_share_one_snapshot_and_the_one_picked_stays() {
    let repo = Repo::new(&[("a.txt", "a\n")], "");
    repo.write("draft.txt", "uncommitted\n");
    let out = repo.handoff(&[
        "run",
        "--attempts",
        "3",
        "--wait",
        "--json",
        "echo attempt $HANDOFF_TASK_ID > n.txt",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let tasks: Value = serde_json::from_slice(&out.stdout).unwrap();
    let tasks = tasks.as_array().unwrap();
    assert_eq!(tasks.len(), 3);
    let base = tasks[0]["base_commit"].clone();
    for (n, t) in tasks.iter().enumerate() {
        assert_eq!(state(t), "done", "{t:#}");
        assert_eq!(t["group"], 1);
        assert_eq!(t["base_commit"], base, "one snapshot for all");
        assert_eq!(t["lines_added"], 1);
        let branch = t["branch"].as_str().unwrap();
        assert_eq!(
            repo.show_bytes(branch, "n.txt"),
            format!("attempt {}\n", n + 1).as_bytes()
        );
        assert_eq!(repo.show_bytes(branch, "draft.txt"), b"uncommitted\n");
    }
    let table = stdout(&repo.handoff(&["show", "g1"]));
    assert!(table.contains("Group g1: 3 attempts"), "{table}");
    assert_eq!(
        table.lines().filter(|l| l.contains("+1 -0")).count(),
        3,
        "{table}"
    );
    let out = repo.handoff(&["pick", "2", "--delete-branches"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let left = repo.task_ids();
    assert_eq!(left, vec![2]);
    assert!(repo.git(&["branch", "--list", "handoff/*"]).lines().count() == 1);
}
