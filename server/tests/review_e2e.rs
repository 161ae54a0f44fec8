//! The review loop: comments on a finished task's changes, several on several files,
//! kept as pending and sent together as the next turn, each quoted with its file, its
//! lines and the change it is about. Real Docker, the real binary.

mod common;

use common::*;
use serde_json::Value;

const GREET: &str = "def greet(name):\n    return \"hello, \" + name\n\n\ndef farewell(name):\n    return \"bye, \" + name\n";

fn repo() -> Repo {
    let agent = format!(
        "[agents.scripted]\nimage = \"{}\"\ncommand = [\"sh\", \"-c\", \"if grep -q 'Review comments' \\\"$HANDOFF_PROMPT_FILE\\\"; then cp \\\"$HANDOFF_PROMPT_FILE\\\" review-prompt.txt; else sed -i 's/hello/HELLO/; s/bye/BYE/' greet.py; echo first > new.txt; fi\"]\n",
        image()
    );
    let repo = Repo::new(&[("greet.py", GREET)], &agent);
    let config = repo
        .read(".handoff.toml")
        .replace("default_agent = \"shell\"", "default_agent = \"scripted\"");
    repo.write(".handoff.toml", &config);
    repo.git(&["commit", "-qam", "scripted agent"]);
    repo.trust();
    repo
}

#[test]
fn comments_on_several_files_go_back_together_as_the_next_turn() {
    let repo = repo();
    let task = repo.run_wait("make the greetings loud");
    assert_eq!(task["state"], "done", "{task:#}");
    let branch = task["branch"].as_str().unwrap().to_string();

    for (at, text) in [
        ("greet.py:2", "use an f-string here"),
        ("greet.py:6", "keep farewells quiet"),
        ("new.txt:1", "this file needs a better name"),
    ] {
        let out = repo.handoff(&["comment", "1", at, text]);
        assert!(out.status.success(), "{at}: {}", stderr(&out));
    }
    // Bad locations are refused with the reason.
    let out = repo.handoff(&["comment", "1", "greet.py:99", "x"]);
    assert!(
        !out.status.success() && stderr(&out).contains("no line 99"),
        "{}",
        stderr(&out)
    );
    let out = repo.handoff(&["comment", "1", "greet.py", "x"]);
    assert!(
        !out.status.success() && stderr(&out).contains("FILE:LINE"),
        "{}",
        stderr(&out)
    );

    let listed: Value = repo.json(&["comment", "1", "--list", "--json"]);
    assert_eq!(listed.as_array().unwrap().len(), 3);
    // One is withdrawn before sending.
    let out = repo.handoff(&["comment", "1", "--remove", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));

    // `reply` with no message sends the pending comments as the turn.
    let out = repo.handoff(&["reply", "1", "--wait", "--json"]);
    let task: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(&out)));
    assert_eq!(task["state"], "done", "{task:#}");
    let prompt = String::from_utf8(repo.show_bytes(&branch, "review-prompt.txt")).unwrap();
    assert!(
        prompt.contains("Review comments on your changes (2)"),
        "{prompt}"
    );
    assert!(prompt.contains("1. greet.py line 2:"), "{prompt}");
    assert!(
        prompt.contains("-    return \"hello, \" + name"),
        "the change is quoted: {prompt}"
    );
    assert!(
        prompt.contains("+    return \"HELLO, \" + name"),
        "{prompt}"
    );
    assert!(prompt.contains("use an f-string here"), "{prompt}");
    assert!(prompt.contains("2. new.txt line 1:"), "{prompt}");
    assert!(prompt.contains("this file needs a better name"), "{prompt}");
    assert!(
        !prompt.contains("keep farewells quiet"),
        "the withdrawn one stays out: {prompt}"
    );
    // Sent: nothing pending any more, and another empty reply is refused.
    let listed: Value = repo.json(&["comment", "1", "--list", "--json"]);
    assert!(listed
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["sent_in_turn"] == 2));
    let out = repo.handoff(&["reply", "1"]);
    assert!(
        !out.status.success() && stderr(&out).contains("empty"),
        "{}",
        stderr(&out)
    );
}
