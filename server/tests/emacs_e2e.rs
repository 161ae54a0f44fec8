//! The language server from a second real client: Emacs with Eglot (Debian's
//! `emacs-nox` and `elpa-eglot`, installed by scripts/setup.sh) runs
//! tests/emacs/flow.el in batch mode against `handoff lsp`, a real repository and real
//! Docker: it delegates the TODO of greet.py with Eglot's code-action menu, waits for
//! the hunk to show as a Flymake note, accepts it and saves the file.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

const GREET: &str = "def greet(name):\n    # TODO: greet loudly\n    return \"hello, \" + name\n\nprint(greet(\"world\"))\n";
const ACCEPTED: &str =
    "def greet(name):\n    return (\"hello, \" + name).upper()\n\nprint(greet(\"world\"))\n";

/// How long a whole Emacs run may take before the test kills it (every wait inside
/// the script is bounded well below this; this catches a blocked read).
const RUN_WITHIN: Duration = Duration::from_secs(300);

/// A repository whose default agent echoes its prompt and resolves the TODO of
/// greet.py the same way every time, as a real agent asked to would (the agent of
/// nvim_e2e.rs).
fn greet_repo() -> Repo {
    Repo::scripted(&[("greet.py", GREET)], Repo::GREET_LOUDLY)
}

/// Fails with the install command unless Emacs and Eglot are there.
fn require_emacs_with_eglot() {
    let install = "install them with scripts/setup.sh (apt-get install emacs-nox elpa-eglot)";
    let out = Command::new("emacs")
        .args([
            "--batch",
            "--eval",
            "(progn (require 'eglot) (princ (locate-library \"eglot\")))",
        ])
        .output()
        .unwrap_or_else(|e| panic!("cannot run emacs ({e}): {install}"));
    assert!(
        out.status.success(),
        "Emacs cannot load Eglot: {install}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What one run of flow.el printed.
struct Run {
    success: bool,
    stdout: String,
    stderr: String,
    took: Duration,
}

impl Run {
    fn said(&self) -> String {
        format!("stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr)
    }
}

/// Runs flow.el with `scenario` on `repo`. With `answer_after`, Eglot's "Proceed? (y
/// or n)" is answered "y" on standard input that long after it shows.
fn emacs_flow(repo: &Repo, scenario: &str, answer_after: Option<Duration>) -> Run {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/emacs/flow.el");
    let home = tempfile::tempdir().unwrap();
    repo.trust_as(&home.path().join("config"));
    let started = Instant::now();
    let mut child = Command::new("emacs")
        .arg("--batch")
        .arg("-l")
        .arg(&script)
        .env("HANDOFF_BIN", handoff_bin())
        .env("REPO", repo.path())
        .env("SCENARIO", scenario)
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env("XDG_STATE_HOME", home.path().join("state"))
        .env("XDG_DATA_HOME", home.path().join("data"))
        .stdin(if answer_after.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start emacs");
    let stdout = Arc::new(Mutex::new(Vec::new()));
    let stderr = Arc::new(Mutex::new(Vec::new()));
    let readers = [
        collect(child.stdout.take().unwrap(), stdout.clone()),
        collect(child.stderr.take().unwrap(), stderr.clone()),
    ];
    let mut stdin = child.stdin.take();
    let mut prompt_seen: Option<Instant> = None;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > RUN_WITHIN {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        if let (Some(after), Some(_)) = (answer_after, stdin.as_ref()) {
            let shown =
                String::from_utf8_lossy(&stdout.lock().unwrap()).contains("Proceed? (y or n)");
            match prompt_seen {
                None if shown => prompt_seen = Some(Instant::now()),
                Some(at) if at.elapsed() >= after => {
                    // Then closed: a second question would fail, not wait.
                    let mut input = stdin.take().unwrap();
                    input.write_all(b"y\n").unwrap();
                }
                _ => {}
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    for reader in readers {
        reader.join().unwrap();
    }
    let run = Run {
        success: status.is_some_and(|s| s.success()),
        stdout: String::from_utf8_lossy(&stdout.lock().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&stderr.lock().unwrap()).into_owned(),
        took: started.elapsed(),
    };
    assert!(
        status.is_some(),
        "emacs did not end within {RUN_WITHIN:?}: killed\n{}",
        run.said()
    );
    if answer_after.is_some() {
        assert!(
            prompt_seen.is_some(),
            "Eglot never asked \"Proceed?\"\n{}",
            run.said()
        );
    }
    run
}

/// Reads `from` to its end into `into`, on a thread.
fn collect(
    mut from: impl Read + Send + 'static,
    into: Arc<Mutex<Vec<u8>>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            into.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    })
}

fn assert_accepted(repo: &Repo, run: &Run, scenario: &str) {
    assert!(
        run.success && run.stdout.contains(&format!("emacs_e2e {scenario}: ok")),
        "the Emacs flow ({scenario}) failed after {:.1?}\n{}",
        run.took,
        run.said()
    );
    // Emacs saved the buffer with the agent's change accepted.
    assert_eq!(repo.read("greet.py"), ACCEPTED, "{}", run.said());
    let task = repo.task(1);
    assert_eq!(task["state"], "done", "{task:#}");
    assert_eq!(task["origin"]["path"], "greet.py", "{task:#}");
    assert_eq!(task["origin"]["line"], 1, "{task:#}");
    // The agent was given the TODO (it echoes its prompt).
    let log = stdout(&repo.handoff(&["logs", "1"]));
    assert!(
        log.contains("greet loudly") && log.contains("greet.py"),
        "{log}"
    );
    eprintln!("emacs_e2e {scenario}: {:.1?}", run.took);
}

#[test]
fn eglot_delegates_a_todo_and_accepting_its_hunk_edits_and_saves_the_buffer() {
    require_emacs_with_eglot();
    let repo = greet_repo();
    let run = emacs_flow(&repo, "accept", None);
    assert_accepted(&repo, &run, "accept");
}

#[test]
fn eglot_asking_before_the_edit_and_a_user_answering_after_12_s_still_gets_the_change() {
    require_emacs_with_eglot();
    let repo = greet_repo();
    let run = emacs_flow(&repo, "confirm", Some(Duration::from_secs(12)));
    assert_accepted(&repo, &run, "confirm");
}
