//! The Neovim plugin (editors/nvim) end to end: headless Neovim (a current build from
//! the PyPI wheel, see tests/nvim/install-nvim.sh) loads the plugin from the working
//! tree and runs a script of editors/nvim/tests/ against the real `handoff lsp`, a real
//! repository and real Docker.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn plugin_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../editors/nvim")
        .canonicalize()
        .unwrap()
}

const GREET: &str = "def greet(name):
    # TODO: greet loudly
    return \"hello, \" + name


def farewell(name):
    return \"bye, \" + name


print(greet(\"world\"))
";

const CHANGES: &str = "# Changes\n\n- First release.\n";

/// What the agent does: prints its prompt (so the log shows it), makes two separate
/// changes to greet.py and appends to CHANGES.md; asked again with review comments, it
/// answers them by changing the farewell once more; asked about "editor settings", it
/// changes `.vscode/settings.json` (a file of tool settings) and writes TIPS.md.
const AGENT: &str = r#"cat "$HANDOFF_PROMPT_FILE"
if grep -q 'editor settings' "$HANDOFF_PROMPT_FILE"; then
  mkdir -p .vscode
  printf '{ "editor.formatOnSave": false }\n' > .vscode/settings.json
  printf -- '- Save often.\n' > TIPS.md
  exit 0
fi
if grep -q 'Review comments' "$HANDOFF_PROMPT_FILE"; then
  sed -i 's/return "goodbye, " + name/return "goodbye, " + name.title()/' greet.py
  exit 0
fi
sed -i -e '/TODO: greet loudly/d' -e 's/return "hello, " + name/return ("hello, " + name).upper()/' -e 's/return "bye, " + name/return "goodbye, " + name/' greet.py
echo "- Louder greetings." >> CHANGES.md
"#;

/// greet.py, CHANGES.md, a default agent running agent.sh from the snapshot, and an
/// agent `slow` that only waits (to be cancelled).
fn scripted_repo() -> Repo {
    let agent = format!(
        "[agents.scripted]\nimage = \"{image}\"\ncommand = [\"sh\", \"agent.sh\"]\n\
         [agents.slow]\nimage = \"{image}\"\ncommand = [\"sleep\", \"600\"]\n",
        image = image()
    );
    let repo = Repo::new(
        &[
            ("greet.py", GREET),
            ("CHANGES.md", CHANGES),
            ("agent.sh", AGENT),
        ],
        &agent,
    );
    let config = repo
        .read(".handoff.toml")
        .replace("default_agent = \"shell\"", "default_agent = \"scripted\"");
    repo.write(".handoff.toml", &config);
    repo.git(&["commit", "-qam", "scripted agent"]);
    repo.trust();
    repo
}

/// Runs editors/nvim/tests/`script` in headless Neovim against a fresh repository.
fn run_script(script: &str) -> Repo {
    let repo = scripted_repo();
    let script_path = plugin_dir().join("tests").join(script);
    let home = tempfile::tempdir().unwrap();
    repo.trust_as(&home.path().join("config"));
    let out = Command::new(nvim())
        .args(["--headless", "--clean", "-l"])
        .arg(&script_path)
        .current_dir(repo.path())
        .env("HANDOFF_BIN", handoff_bin())
        .env("REPO", repo.path())
        .env("PLUGIN_DIR", plugin_dir())
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env("XDG_STATE_HOME", home.path().join("state"))
        .env("XDG_DATA_HOME", home.path().join("data"))
        .env("XDG_CACHE_HOME", home.path().join("cache"))
        .output()
        .unwrap();
    let log =
        std::fs::read_to_string(home.path().join("state/handoff/lsp.log")).unwrap_or_default();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "nvim {script} failed\nstdout: {stdout}\nstderr: {stderr}\nserver log:\n{log}"
    );
    let name = script.trim_end_matches("_spec.lua");
    assert!(
        format!("{stdout}{stderr}").contains(&format!("{name}: ok")),
        "nvim {script} did not finish\nstdout: {stdout}\nstderr: {stderr}"
    );
    repo
}

#[test]
fn a_task_started_from_neovim_shows_its_changes_inline_and_the_keys_accept_and_reject_them() {
    let repo = run_script("review_spec.lua");
    // Accepting edits the buffer, not the file: the disk is still the user's.
    assert_eq!(repo.read("greet.py"), GREET);
    assert_eq!(repo.read("CHANGES.md"), CHANGES);
    // The branch holds the agent's work whatever was decided in the editor.
    let task = repo.task(1);
    assert_eq!(task["state"], "done");
    let branch = task["branch"].as_str().unwrap();
    let result = String::from_utf8(repo.show_bytes(branch, "greet.py")).unwrap();
    assert!(
        result.contains(".upper()") && result.contains("goodbye"),
        "{result}"
    );
}

#[test]
fn the_task_picker_lists_what_the_cli_lists_and_offers_log_diff_reply_cancel_and_accept_all() {
    let repo = run_script("tasks_spec.lua");
    assert_eq!(repo.read("greet.py"), GREET);
    assert_eq!(repo.read("CHANGES.md"), CHANGES);
    // Task #3 was cancelled, then removed with `handoff rm`; its branch stays.
    let ids = repo.task_ids();
    assert_eq!(ids, [1, 2, 4]);
    // Task #4's "accept all" took TIPS.md into a buffer and left the tool settings to
    // be read and accepted one by one: neither is on disk, and the branch has both.
    assert!(!repo.path().join(".vscode").exists());
    assert!(!repo.path().join("TIPS.md").exists());
    let four = repo.task(4);
    assert_eq!(
        four["sensitive_files"],
        serde_json::json!([".vscode/settings.json"])
    );
    assert_eq!(
        repo.git(&["branch", "--list", "handoff/3-*"])
            .lines()
            .count(),
        1
    );
}

#[test]
fn review_comments_made_in_neovim_are_drawn_on_their_changes_and_sent_as_the_next_turn() {
    let repo = run_script("comments_spec.lua");
    assert_eq!(repo.read("greet.py"), GREET);
    // Both comments went with the second turn, which answered them on the branch.
    let task = repo.task(1);
    let turns = task["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 2);
    let prompt = turns[1]["prompt"].as_str().unwrap();
    assert!(
        prompt.contains("Review comments on your changes (2)"),
        "{prompt}"
    );
    let branch = task["branch"].as_str().unwrap();
    let result = String::from_utf8(repo.show_bytes(branch, "greet.py")).unwrap();
    assert!(result.contains("name.title()"), "{result}");
}

#[test]
fn attempts_started_from_neovim_show_together_in_the_picker_and_keeping_one_removes_the_other() {
    let repo = run_script("attempts_spec.lua");
    let ids = repo.task_ids();
    assert_eq!(ids, [1]);
    // The attempt removed keeps its branch, as `handoff pick` leaves it.
    assert_eq!(
        repo.git(&["branch", "--list", "handoff/2-*"])
            .lines()
            .count(),
        1
    );
}

#[test]
fn checkhealth_handoff_reports_the_binary_docker_and_the_config_without_errors() {
    run_script("health_spec.lua");
}

#[test]
fn a_changed_configuration_is_asked_about_with_vim_ui_select_and_once_trusted_its_profile_runs_with_its_env(
) {
    let repo = run_script("trust_spec.lua");
    // The profile that came with the change ran, with the variable it passes.
    let task = repo.task(1);
    assert_eq!(task["agent"], "envcheck");
    let branch = task["branch"].as_str().unwrap();
    let passed = String::from_utf8(repo.show_bytes(branch, "PASSED.md")).unwrap();
    assert_eq!(passed, "passed through once trusted\n");
}
