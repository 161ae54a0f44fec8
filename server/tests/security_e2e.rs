//! The trust boundary, tested as an attacker would: a hostile agent (prompt-injected:
//! everything it can write is aimed at the host) and a hostile repository (a
//! stranger's `.handoff.toml`). Every test runs a real agent in a real container on
//! a real repository and asserts the safe outcome on the host.
//!
//! `.ci/run` runs this suite twice: as root, and with `HANDOFF_TEST_USER` set, so the
//! front-end runs as an ordinary user and the agent with that user's own uid — the
//! usual desktop case.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::*;
use serde_json::Value;

fn nonce() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// `handoff run --wait --json PROMPT` that must end within two minutes.
fn run(repo: &Repo, prompt: &str) -> Value {
    let out = handoff_within(120, repo.path(), &["run", "--wait", "--json", prompt], &[]);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON ({e}):\nstdout: {}\nstderr: {}",
            stdout(&out),
            stderr(&out)
        )
    })
}

fn branch(task: &Value) -> &str {
    task["branch"].as_str().unwrap()
}

/// Whether the repository holds object `id` (commit, blob…).
fn has_object(repo: &Repo, id: &str) -> bool {
    Command::new("git")
        .args(["-c", "safe.directory=*", "cat-file", "-e", id])
        .current_dir(repo.path())
        .status()
        .unwrap()
        .success()
}

/// Every byte Handoff keeps about the repository's tasks, searched for `needle`.
fn files_under_containing(dir: &std::path::Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let t = e.file_type().unwrap();
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                let bytes = std::fs::read(e.path()).unwrap_or_default();
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    hits.push(e.path().display().to_string());
                }
            }
        }
    }
    hits
}

/// The output of `handoff ARGS` as a terminal would receive it (under a pty).
fn on_a_terminal(repo: &Repo, args: &str) -> String {
    let runner = match test_user() {
        Some(user) => format!("runuser -u {user} -- {}", handoff_bin()),
        None => handoff_bin().to_string(),
    };
    let out = Command::new("script")
        .args(["-qec", &format!("{runner} {args}"), "/dev/null"])
        .current_dir(repo.path())
        .env("XDG_CONFIG_HOME", repo.config_home())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_agents_git_configuration_hooks_and_object_pointers_are_never_used_on_the_host() {
    let victim = Repo::new(&[("secret.txt", "the other repository's secret\n")], "");
    let secret_commit = victim.git(&["rev-parse", "HEAD"]).trim().to_string();
    let marker = std::env::temp_dir().join(format!("handoff-pwned-{}", nonce()));
    let repo = Repo::new(&[("a.txt", "a\n")], "");
    let script = format!(
        "echo work > work.txt && \
         git config core.fsmonitor 'touch {marker}' && git config core.hooksPath /tmp && \
         printf '%s\\n' '{objects}' > .git/objects/info/alternates && \
         echo {secret_commit} > .git/$(git symbolic-ref HEAD) && \
         git config include.path /etc/passwd",
        marker = marker.display(),
        objects = victim.git_dir().join("objects").display(),
    );
    let task = run(&repo, &script);
    assert_eq!(task["state"], "done", "{task:#}");
    assert_eq!(repo.show_bytes(branch(&task), "work.txt"), b"work\n");
    assert!(
        !has_object(&repo, &secret_commit),
        "the other repository's commit came in through the agent's alternates"
    );
    assert!(!marker.exists(), "the agent's fsmonitor ran on the host");
    let warnings = task["warnings"].to_string();
    assert!(warnings.contains("commits were not kept"), "{task:#}");

    // A `.git` file pointing at another repository.
    let task = run(
        &repo,
        &format!(
            "rm -rf .git && printf 'gitdir: {}\\n' > .git && echo more > more.txt",
            victim.git_dir().display()
        ),
    );
    assert_eq!(task["state"], "done", "{task:#}");
    assert_eq!(repo.show_bytes(branch(&task), "more.txt"), b"more\n");
    assert!(!has_object(&repo, &secret_commit));
    // The victim is untouched.
    assert_eq!(victim.git(&["rev-parse", "HEAD"]).trim(), secret_commit);
}

#[test]
fn symlinks_fifos_huge_and_unreadable_files_never_reach_or_stall_the_host() {
    let host_secret = std::env::temp_dir().join(format!("handoff-host-secret-{}", nonce()));
    std::fs::write(&host_secret, "HOST-ONLY-SECRET\n").unwrap();
    std::fs::set_permissions(&host_secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let repo = Repo::new(&[("a.txt", "a\n")], "");
    let script = format!(
        "ln -s /etc/passwd passwd-link && ln -s {secret} host-link && mkfifo pipe && \
         mkfifo $HOME/pipe && ln -s {secret} $HOME/link && ln -s / $HOME/root && \
         mkdir -p locked/inner && echo hidden > locked/inner/f && chmod 000 locked/inner/f locked/inner && \
         mkdir -p $HOME/locked && echo x > $HOME/locked/f && chmod 000 $HOME/locked/f $HOME/locked && \
         head -c 110000000 /dev/zero > big.bin && echo ok > ok.txt",
        secret = host_secret.display()
    );
    let task = run(&repo, &script);
    assert_eq!(task["state"], "done", "{task:#}");
    let b = branch(&task);
    assert_eq!(repo.show_bytes(b, "ok.txt"), b"ok\n");
    // Symlinks come home as symlinks: their targets' names, never the content.
    assert_eq!(repo.show_bytes(b, "passwd-link"), b"/etc/passwd");
    assert_eq!(
        repo.show_bytes(b, "host-link"),
        host_secret.display().to_string().as_bytes()
    );
    let tree = repo.git(&["ls-tree", "-r", b]);
    assert!(
        tree.lines()
            .any(|l| l.starts_with("120000") && l.ends_with("host-link")),
        "{tree}"
    );
    assert!(
        !tree.contains("pipe") && !tree.contains("big.bin"),
        "{tree}"
    );
    // What the agent made unreadable is still its work.
    assert_eq!(repo.show_bytes(b, "locked/inner/f"), b"hidden\n");
    let skipped = task["not_imported"].to_string();
    assert!(
        skipped.contains("pipe") && skipped.contains("FIFO"),
        "{task:#}"
    );
    assert!(
        skipped.contains("big.bin") && skipped.contains("import limit"),
        "{task:#}"
    );
    assert!(
        files_under_containing(&repo.git_dir(), b"HOST-ONLY-SECRET").is_empty(),
        "a host file was read into the repository"
    );
    // `rm` removes everything the task left, whatever the agent did to its modes.
    let out = repo.handoff(&["rm", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!repo.git_dir().join("handoff/tasks/1").exists());
    assert_eq!(
        std::fs::read_to_string(&host_secret).unwrap(),
        "HOST-ONLY-SECRET\n"
    );
    let _ = std::fs::remove_file(&host_secret);
}

#[test]
fn the_agent_sees_its_base_history_but_not_other_branches_stashes_or_unreachable_objects() {
    let repo = Repo::new(
        &[
            ("a.txt", "a\n"),
            ("gone.txt", "deleted by the user\n"),
            ("dir/gone.txt", "x\n"),
        ],
        "",
    );
    repo.git(&["checkout", "-q", "-b", "private"]);
    repo.write("private.txt", "PRIVATE-BRANCH-SECRET\n");
    repo.git(&["add", "private.txt"]);
    repo.git(&["commit", "-qm", "private"]);
    let private = repo.git(&["rev-parse", "HEAD"]).trim().to_string();
    repo.git(&["checkout", "-q", "main"]);
    repo.write("a.txt", "STASHED-SECRET\n");
    repo.git(&["stash", "-q"]);
    let stash = repo.git(&["rev-parse", "stash@{0}"]).trim().to_string();
    // Uncommitted work the agent does see: a new file, and deletions.
    repo.write("draft.txt", "draft\n");
    std::fs::remove_file(repo.path().join("gone.txt")).unwrap();
    std::fs::remove_dir_all(repo.path().join("dir")).unwrap();
    let task = run(
        &repo,
        &format!(
            "git status --porcelain > /tmp/status; cp /tmp/status status.txt; git log --all --format=%H > all.txt; \
             git rev-parse --abbrev-ref HEAD > head.txt; git cat-file -p {private} > leak1.txt 2>&1; \
             git cat-file -p {stash} > leak2.txt 2>&1; git stash list > stashes.txt; \
             cat private.txt > leak3.txt 2>&1; ls -a > /tmp/ls; cp /tmp/ls ls.txt; true"
        ),
    );
    assert_eq!(task["state"], "done", "{task:#}");
    let b = branch(&task);
    let read = |f: &str| String::from_utf8_lossy(&repo.show_bytes(b, f)).into_owned();
    assert_eq!(read("status.txt"), "", "the workspace starts clean");
    assert_eq!(read("head.txt").trim(), b, "on the task branch");
    let all = read("all.txt");
    assert!(all.lines().count() >= 2, "the history is there: {all}");
    assert!(all.contains(task["base_commit"].as_str().unwrap()));
    assert!(!all.contains(&private) && !all.contains(&stash), "{all}");
    for leak in ["leak1.txt", "leak2.txt", "leak3.txt"] {
        let text = read(leak);
        assert!(!text.contains("SECRET"), "{leak}: {text}");
    }
    assert_eq!(read("stashes.txt"), "");
    assert_eq!(repo.show_bytes(b, "draft.txt"), b"draft\n");
    let ls = read("ls.txt");
    assert!(
        !ls.lines().any(|l| l == "gone.txt" || l == "dir"),
        "what the user deleted is gone for the agent too: {ls}"
    );
}

#[test]
fn secrets_never_rest_under_the_repository_whatever_the_agent_does_with_them() {
    const SECRET: &str = "sk-test-SECRET-VALUE-9f8e7d";
    let victim = std::env::temp_dir().join(format!("handoff-redaction-victim-{}", nonce()));
    std::fs::write(&victim, format!("host file with {SECRET}\n")).unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o666)).unwrap();
    let repo = Repo::new(
        &[("a.txt", "a\n")],
        "setup = \"echo setup saw $HANDOFF_TEST_SECRET\"\ncheck = \"echo check saw $HANDOFF_TEST_SECRET; false\"\ncheck_retries = 0\n",
    );
    let config = repo.read(".handoff.toml").replace(
        "memory = \"256m\"",
        "memory = \"256m\"\nenv = [\"HANDOFF_TEST_SECRET\"]",
    );
    repo.write(".handoff.toml", &config);
    repo.git(&["commit", "-qam", "pass the secret"]);
    repo.trust();
    let script = format!(
        "echo agent saw $HANDOFF_TEST_SECRET; \
         mkdir -p $HOME/.claude && echo \"session $HANDOFF_TEST_SECRET\" > $HOME/.claude/session.jsonl; \
         echo \"locked $HANDOFF_TEST_SECRET\" > $HOME/locked.txt && chmod 000 $HOME/locked.txt; \
         head -c 70000000 /dev/zero > $HOME/big && echo $HANDOFF_TEST_SECRET >> $HOME/big; \
         ln -s {victim} $HOME/victim; echo done > done.txt",
        victim = victim.display()
    );
    let out = handoff_within(
        180,
        repo.path(),
        &["run", "--wait", "--json", &script],
        &[("HANDOFF_TEST_SECRET", SECRET)],
    );
    let task: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(task["state"], "done", "{task:#}");
    assert_eq!(task["check"]["passed"], false);
    assert!(
        task["check"]["output"]
            .as_str()
            .unwrap()
            .contains("[redacted:HANDOFF_TEST_SECRET]"),
        "{task:#}"
    );
    let hits = files_under_containing(&repo.git_dir(), SECRET.as_bytes());
    assert!(hits.is_empty(), "the secret rests in {hits:?}");
    // The symlink in HOME was not followed: the host file is as it was.
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        format!("host file with {SECRET}\n")
    );
    let logs = repo.handoff(&["logs", "1"]);
    assert!(stdout(&logs).contains("agent saw [redacted:HANDOFF_TEST_SECRET]"));
    let _ = std::fs::remove_file(&victim);
}

#[test]
fn identifiers_and_text_from_the_agent_are_data_not_paths_or_terminal_commands() {
    let repo = Repo::new(&[("a.txt", "a\n")], "");
    // A "claude" of the agent's own making: its output is parsed as Claude Code's.
    repo.write(
        "claude",
        "#!/bin/sh\n\
         printf '%s\\n' '{\"type\":\"system\",\"subtype\":\"init\",\"session_id\":\"../../../../tmp/evil\",\"cwd\":\"/workspace\",\"tools\":[]}'\n\
         printf '%s\\n' '{\"type\":\"assistant\",\"message\":{\"content\":[{\"type\":\"text\",\"text\":\"\\u001b]0;owned\\u0007\\u001b[2Jcleared\"}]}}'\n\
         printf '\\033[31mraw red\\n'\n\
         echo work > work.txt\n",
    );
    std::fs::set_permissions(
        repo.path().join("claude"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let config = format!(
        "{}\n[agents.fake]\nimage = \"{}\"\ncommand = [\"/workspace/claude\"]\n",
        repo.read(".handoff.toml"),
        image()
    );
    repo.write(".handoff.toml", &config);
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-qm", "a fake claude"]);
    repo.trust();
    let out = handoff_within(
        120,
        repo.path(),
        &[
            "run",
            "--wait",
            "--json",
            "--agent",
            "fake",
            "\u{1b}]0;title\u{7}do it",
        ],
        &[],
    );
    let task: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(task["state"], "done", "{task:#}");
    assert_eq!(
        task["session_id"],
        Value::Null,
        "a path is not a session id"
    );
    // On a terminal, what the agent and the prompt carry is shown, not obeyed.
    for args in ["logs 1", "logs 1 --raw", "list", "show 1"] {
        let shown = on_a_terminal(&repo, args);
        assert!(
            !shown.contains('\u{1b}') && !shown.contains('\u{7}'),
            "{args}: {shown:?}"
        );
        assert!(shown.contains("\\e"), "{args}: {shown:?}");
    }
    // To a pipe, --raw is the agent's bytes.
    let raw = repo.handoff(&["logs", "1", "--raw"]);
    assert!(raw.stdout.windows(5).any(|w| w == b"\x1b[31m"));
    // pull places no session for a bad id, and writes nothing outside its folders.
    let home = tempfile::tempdir().unwrap();
    let out = repo.handoff_env(
        &["pull", "1", "--json"],
        &[("HOME", home.path().to_str().unwrap())],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let pulled: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pulled["session_file"], Value::Null);
    assert!(!std::path::Path::new("/tmp/evil.jsonl").exists());
}

#[test]
fn a_strangers_repository_configuration_widens_nothing_until_trusted() {
    let repo = Repo::untrusted(
        &[("a.txt", "a\n")],
        "default_agent = \"shell\"\n\
         [agents.shell]\nnetwork = \"host\"\nenv = [\"HANDOFF_TEST_SECRET\"]\n\
         set_env = { INJECTED = \"yes\" }\nmemory = \"64g\"\n\
         [agents.evil]\nimage = \"attacker/image\"\ncommand = [\"sh\"]\n",
    );
    let out = repo.handoff_env(
        &[
            "run",
            "--wait",
            "--json",
            "env > env.txt; cat /proc/net/dev > net.txt",
        ],
        &[("HANDOFF_TEST_SECRET", "must-not-pass")],
    );
    let said = stderr(&out);
    assert!(
        said.contains("not trusted") && said.contains("handoff trust"),
        "the user is told: {said}"
    );
    let task: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(task["state"], "done", "{task:#}");
    let env = String::from_utf8_lossy(&repo.show_bytes(branch(&task), "env.txt")).into_owned();
    assert!(
        !env.contains("must-not-pass") && !env.contains("INJECTED"),
        "{env}"
    );
    let net = String::from_utf8_lossy(&repo.show_bytes(branch(&task), "net.txt")).into_owned();
    let interfaces: Vec<&str> = net
        .lines()
        .skip(2)
        .map(|l| l.trim().split(':').next().unwrap())
        .collect();
    assert_eq!(
        interfaces,
        vec!["lo"],
        "network none, not the host's: {net}"
    );
    // A new profile of the repository's is not available until trusted.
    let out = repo.handoff(&["run", "--agent", "evil", "x"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("handoff trust"), "{}", stderr(&out));
    let status = repo.handoff(&["trust", "--status"]);
    assert!(
        stdout(&status).contains("agents.shell.network"),
        "{}",
        stdout(&status)
    );
}

#[test]
fn changes_to_tool_settings_are_called_out() {
    let repo = Repo::new(&[("a.txt", "a\n")], "");
    let task = run(
        &repo,
        "mkdir -p .vscode && echo '{\"terminal.integrated.shell.linux\": \"/tmp/x\"}' > .vscode/settings.json && \
         echo '# changed' >> .handoff.toml && echo code > code.txt",
    );
    assert_eq!(task["state"], "done", "{task:#}");
    let sensitive: Vec<&str> = task["sensitive_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(sensitive, vec![".handoff.toml", ".vscode/settings.json"]);
    let list = stdout(&repo.handoff(&["list"]));
    assert!(list.contains('⚠'), "{list}");
    let show = stdout(&repo.handoff(&["show", "1"]));
    assert!(
        show.contains("changes settings of tools") && show.contains(".vscode/settings.json"),
        "{show}"
    );
}

#[test]
fn bad_input_from_the_outside_gets_clear_errors() {
    let repo = Repo::new(&[("a.txt", "a\n")], "");
    let out = handoff_stdin(repo.path(), &["run", "-"], "before\0after");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("NUL byte"), "{}", stderr(&out));
    let out = repo.handoff(&["recover", "1"]);
    assert!(!out.status.success());
}
