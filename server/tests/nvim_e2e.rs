//! The language server from a real client: headless Neovim (a current build from the
//! PyPI wheel, see tests/nvim/install-nvim.sh) runs tests/nvim/lsp_e2e.lua against
//! `handoff lsp`, a real repository and real Docker.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

const GREET: &str = "def greet(name):\n    # TODO: greet loudly\n    return \"hello, \" + name\n\nprint(greet(\"world\"))\n";

/// A repository whose default agent echoes its prompt and edits greet.py the same
/// way every time, as a real agent asked to resolve the TODO would.
fn greet_repo() -> Repo {
    greet_repo_after("")
}

/// Like [`greet_repo`], the agent first running `before` (e.g. `sleep 2;`).
fn greet_repo_after(before: &str) -> Repo {
    Repo::scripted(
        &[("greet.py", GREET)],
        &format!("{before} {}", Repo::GREET_LOUDLY),
    )
}

/// Runs `tests/nvim/SCRIPT` in headless Neovim with `SCENARIO` and extra env.
fn nvim_script(
    script: &str,
    repo: &Repo,
    scenario: &str,
    env: &[(&str, &str)],
) -> (std::process::Output, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/nvim")
        .join(script);
    let home = tempfile::tempdir().unwrap();
    repo.trust_as(&home.path().join("config"));
    let mut cmd = Command::new(nvim());
    cmd.args(["--headless", "--clean", "-l"])
        .arg(&script)
        .env("HANDOFF_BIN", handoff_bin())
        .env("REPO", repo.path())
        .env("SCENARIO", scenario)
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env("XDG_STATE_HOME", home.path().join("state"))
        .env("XDG_DATA_HOME", home.path().join("data"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let log =
        std::fs::read_to_string(home.path().join("state/handoff/lsp.log")).unwrap_or_default();
    (out, log)
}

fn run_scenario(scenario: &str) {
    let repo = greet_repo();
    let (out, log) = nvim_script("lsp_e2e.lua", &repo, scenario, &[]);
    assert!(
        out.status.success(),
        "nvim scenario {scenario} failed\nstdout: {}\nstderr: {}\nserver log:\n{log}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains(&format!("lsp_e2e {scenario}: ok")), "{said}");
    // The user's file on disk is theirs: accepting edits the buffer, not the disk.
    assert_eq!(repo.read("greet.py"), GREET);
}

#[test]
fn todo_code_action_runs_a_task_and_accepting_the_hunk_edits_the_buffer() {
    run_scenario("accept");
}

#[test]
fn a_hunk_is_accepted_at_its_new_place_after_the_user_inserted_lines_above() {
    run_scenario("shifted");
}

#[test]
fn a_hunk_whose_lines_the_user_changed_is_refused_as_a_conflict_and_can_be_rejected() {
    run_scenario("conflict");
}

fn run_errors(scenario: &str, env: &[(&str, &str)]) {
    let repo = greet_repo();
    // A 10 MB file with a TODO on its last line, and a binary file.
    let mut huge = "x = 1  # filler line for a very large file\n".repeat(10 << 20 >> 6);
    huge.push_str("# TODO: handle the end of the huge file\n");
    repo.write("huge.py", &huge);
    repo.write_bytes("blob.bin", b"\x00\x01# TODO: not text\x00\xff\n");
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(
        outside.path().join("notes.py"),
        "# TODO: outside any repository\n",
    )
    .unwrap();
    let outside_path = outside.path().to_str().unwrap().to_string();
    let mut env = env.to_vec();
    env.push(("OUTSIDE", &outside_path));
    let (out, log) = nvim_script("lsp_errors.lua", &repo, scenario, &env);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.contains(&format!("lsp_errors {scenario}: ok")),
        "nvim error scenario {scenario} failed:\n{said}\nserver log:\n{log}"
    );
}

#[test]
fn bad_input_from_the_editor_gets_clear_messages_and_the_server_keeps_serving() {
    run_errors("errors", &[]);
}

#[test]
fn without_docker_a_delegated_task_waits_in_the_queue_and_the_user_is_told() {
    run_errors(
        "docker_down",
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
    );
}

#[test]
fn selection_progress_lenses_cli_tasks_accept_all_and_open_diff() {
    let repo = greet_repo_after("sleep 2;");
    let (out, log) = nvim_script("lsp_flows.lua", &repo, "flows", &[]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.contains("lsp_flows: ok"),
        "nvim flows failed:\n{said}\nserver log:\n{log}"
    );
}
