//! One test per defect of issue 10, each written to fail before its fix: what LSP
//! clients other than the bundled plugins ran into.

use std::time::Duration;

use serde_json::{json, Value};

use super::harness::{Fixture, Harness, Profile, GREET_DONE};

/// Handoff's hunk diagnostics in a publication.
fn hunks(diagnostics: &[Value]) -> Vec<Value> {
    diagnostics
        .iter()
        .filter(|d| d["source"] == "handoff")
        .cloned()
        .collect()
}

fn titles(actions: &[Value]) -> Vec<String> {
    actions
        .iter()
        .map(|a| a["title"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Opens greet.py with task #1's two hunks in it.
async fn reviewing(profile: Profile) -> (Harness, String) {
    let mut h = Harness::start(Fixture::with_tasks().await, profile).await;
    let uri = h.open("greet.py").await;
    let found = hunks(&h.diagnostics(&uri).await);
    assert_eq!(found.len(), 2, "{found:#?}");
    (h, uri)
}

fn accept(uri: &str, hunk: Option<usize>) -> Value {
    json!({ "task": 1, "uri": uri, "hunk": hunk })
}

// 1. No handler waits unboundedly on the client.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepting_answers_at_once_even_when_the_editor_never_answers_apply_edit() {
    let (mut h, uri) = reviewing(Profile::never_answers()).await;
    // More accepts than the framework serves at once (4): each must be answered.
    for hunk in [Some(0), Some(1), None, Some(0), Some(1)] {
        let started = std::time::Instant::now();
        let _ = h.execute("handoff.accept", accept(&uri, hunk)).await;
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }
    // And the server still answers everything else.
    h.code_actions(&uri, [0, 0, 0, 0]).await;
    // The edits were never confirmed: once the wait for them is over (the user is
    // told, for each), the changes are back for review, not lost, not conflicts.
    h.eventually("both waits to end", Duration::from_secs(5), |h| {
        let said = h.sent("window/showMessage");
        said.iter()
            .filter(|m| {
                m["params"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("did not confirm the change from task #1")
            })
            .count()
            == 2
    })
    .await;
    let back = hunks(&h.last_diagnostics(&uri).unwrap());
    assert_eq!(back.len(), 2, "{back:#?}");
    assert!(
        back.iter().all(|d| d["data"]["conflict"] == false),
        "{back:#?}"
    );
    assert_eq!(h.fixture.decisions(1), Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delegating_and_rejecting_answer_at_once_when_the_editor_never_answers() {
    let (mut h, uri) = reviewing(Profile::never_answers()).await;
    // Progress creation and CodeLens refreshes are requests too.
    let task = h
        .execute(
            "handoff.delegate",
            json!({ "kind": "prompt", "prompt": "sleep a while", "uri": uri }),
        )
        .await
        .expect("delegate");
    assert_eq!(task["id"], 3);
    h.execute("handoff.reject", accept(&uri, Some(1)))
        .await
        .expect("reject");
    h.execute("handoff.cancel", json!({ "task": 3, "uri": uri }))
        .await
        .expect("cancel");
    let listed = h
        .execute("handoff.listTasks", json!({}))
        .await
        .expect("listTasks");
    assert_eq!(listed.as_array().unwrap().len(), 3);
}

// 2. An accepted hunk never turns into a conflict.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accept_whose_did_change_comes_before_the_answer_is_never_shown_as_a_conflict() {
    let (mut h, uri) = reviewing(Profile::change_first()).await;
    h.execute("handoff.accept", accept(&uri, Some(0)))
        .await
        .expect("accept");
    h.pump(Duration::from_millis(1500)).await;
    for publication in h.sent("textDocument/publishDiagnostics") {
        for d in hunks(publication["params"]["diagnostics"].as_array().unwrap()) {
            assert_eq!(d["data"]["conflict"], false, "published a conflict: {d:#}");
        }
    }
    assert!(h
        .text(&uri)
        .starts_with("def greet(name):\n    return (\"hello, \" + name).upper()\n"));
    let left = hunks(&h.last_diagnostics(&uri).unwrap());
    assert_eq!(left.len(), 1, "{left:#?}");
    assert_eq!(left[0]["data"]["hunk"], 1);
    assert_eq!(h.fixture.decisions(1), json!({ "0": "accepted" }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proposed_lines_already_in_the_buffer_are_recorded_as_accepted() {
    // The user typed (or pasted from the diff) exactly what the agent proposes.
    let (mut h, uri) = reviewing(Profile::neovim()).await;
    h.edit(&uri, GREET_DONE).await;
    h.wait_for("the hunks to go", Duration::from_secs(5), |m| {
        m["method"] == "textDocument/publishDiagnostics"
            && m["params"]["uri"] == uri
            && hunks(m["params"]["diagnostics"].as_array().unwrap()).is_empty()
    })
    .await;
    h.pump(Duration::from_millis(300)).await;
    assert_eq!(
        h.fixture.decisions(1),
        json!({ "0": "accepted", "1": "accepted" })
    );
}

// 3. Capabilities are honoured.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_code_action_literals_gets_commands() {
    let (mut h, uri) = reviewing(Profile::strict()).await;
    for range in [[1, 0, 1, 0], [6, 0, 6, 0], [0, 0, 3, 0]] {
        let actions = h.code_actions(&uri, range).await;
        assert!(!actions.is_empty(), "{range:?}");
        for a in &actions {
            assert!(a["command"].is_string(), "not a Command: {a:#}");
            assert!(a.get("kind").is_none() && a.get("edit").is_none(), "{a:#}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_apply_edit_is_never_sent_one_and_is_told_how_to_apply() {
    let (mut h, uri) = reviewing(Profile::strict()).await;
    let err = h
        .execute("handoff.accept", accept(&uri, Some(0)))
        .await
        .expect_err("accept cannot edit this client's buffer");
    let message = err["message"].as_str().unwrap();
    assert!(message.contains("cannot apply edits"), "{message}");
    assert!(message.contains("task-1.diff"), "{message}");
    h.pump(Duration::from_millis(300)).await;
    assert!(h.sent("workspace/applyEdit").is_empty());
    assert!(
        !h.sent("window/showMessage").is_empty(),
        "not even a message"
    );
    // A client with code action literals gets the edit in the action itself.
    let (mut ale, uri) = reviewing(Profile::ale()).await;
    let actions = ale.code_actions(&uri, [1, 0, 1, 0]).await;
    let accept = actions
        .iter()
        .find(|a| a["title"].as_str().unwrap().starts_with("Accept change"))
        .unwrap_or_else(|| panic!("{actions:#?}"));
    assert!(accept["edit"].is_object(), "{accept:#}");
    assert!(accept.get("command").is_none(), "{accept:#}");
    // The client applies it; the server sees the proposed lines and records them.
    ale.apply_edit(&accept["edit"]).await;
    ale.wait_for("the accepted hunk to go", Duration::from_secs(5), |m| {
        m["method"] == "textDocument/publishDiagnostics"
            && hunks(m["params"]["diagnostics"].as_array().unwrap()).len() == 1
    })
    .await;
    assert_eq!(ale.fixture.decisions(1), json!({ "0": "accepted" }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handoff_notifications_go_only_to_clients_that_opt_in() {
    for (profile, expected) in [(Profile::strict(), false), (Profile::vscode(), true)] {
        let name = profile.name;
        let mut h = Harness::start(Fixture::new(), profile).await;
        let uri = h.open("greet.py").await;
        h.execute(
            "handoff.delegate",
            json!({ "kind": "prompt", "prompt": "sleep", "uri": uri }),
        )
        .await
        .expect("delegate");
        h.pump(Duration::from_millis(300)).await;
        let custom = h.log.iter().any(|m| {
            m["method"]
                .as_str()
                .is_some_and(|m| m.starts_with("handoff/"))
        });
        assert_eq!(custom, expected, "{name}: {:#}", json!(h.log));
    }
}

// 4. Plain clients get feedback and control.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_origin_line_offers_cancel_show_log_and_open_diff() {
    let (mut h, uri) = reviewing(Profile::strict()).await;
    let running = titles(&h.code_actions(&uri, [6, 0, 6, 0]).await);
    assert!(
        running.iter().any(|t| t == "Handoff #2 running — Cancel"),
        "{running:#?}"
    );
    assert!(
        running.iter().any(|t| t == "Handoff #2 — Show log"),
        "{running:#?}"
    );
    // Line 1 is task #1's origin (and holds its first hunk).
    let done = titles(&h.code_actions(&uri, [1, 0, 1, 0]).await);
    assert!(
        done.iter().any(|t| t == "Handoff #1 — Open diff"),
        "{done:#?}"
    );
    assert!(
        done.iter().any(|t| t == "Handoff #1 — Show log"),
        "{done:#?}"
    );
    // Without showDocument, showing the log says where it is.
    h.execute("handoff.showLog", json!({ "task": 2, "uri": uri }))
        .await
        .expect("showLog");
    h.eventually("where the log is", Duration::from_secs(2), |h| {
        h.said("the log of task #2 is in")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_progress_is_told_that_a_task_started() {
    let mut h = Harness::start(Fixture::new(), Profile::strict()).await;
    let uri = h.open("greet.py").await;
    let actions = h.code_actions(&uri, [1, 0, 1, 0]).await;
    let delegate = actions
        .iter()
        .find(|a| a["title"].as_str().unwrap().starts_with("Delegate TODO"))
        .unwrap_or_else(|| panic!("{actions:#?}"));
    // A Command, or a code action literal carrying one.
    let command = match &delegate["command"] {
        Value::Object(_) => delegate["command"].clone(),
        _ => delegate.clone(),
    };
    h.request("workspace/executeCommand", command)
        .await
        .expect("delegate");
    h.eventually(
        "a message that the task started",
        Duration::from_secs(2),
        |h| h.said("Handoff #1 started"),
    )
    .await;
    let said = h.sent("window/showMessage");
    assert!(
        said.iter().any(|m| m["params"]["type"] == 3
            && m["params"]["message"]
                .as_str()
                .unwrap()
                .contains("Handoff #1 started")),
        "{said:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delegating_a_todo_that_has_a_running_task_warns_first() {
    let (mut h, uri) = reviewing(Profile::neovim()).await;
    let actions = titles(&h.code_actions(&uri, [6, 0, 6, 0]).await);
    let delegate = actions
        .iter()
        .find(|t| t.starts_with("Delegate TODO"))
        .unwrap_or_else(|| panic!("{actions:#?}"));
    assert!(
        delegate.contains("Handoff #2 is still running on it"),
        "{delegate}"
    );
}

// 5. "Delegate selection…" only for a real selection.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_a_character_or_a_word_is_not_a_selection() {
    let mut h = Harness::start(Fixture::new(), Profile::neovim()).await;
    let uri = h.open("greet.py").await;
    let selection = |actions: &[Value]| {
        titles(actions)
            .iter()
            .any(|t| t.starts_with("Delegate selection"))
    };
    // Line 2 is `    return "hello, " + name`.
    for (range, offered) in [
        ([2, 4, 2, 4], false),  // a cursor
        ([2, 4, 2, 5], false),  // one character (ALE)
        ([2, 4, 2, 10], false), // the word `return` (clients that send the word)
        ([2, 4, 2, 18], true),  // `return "hello, "`
        ([2, 0, 3, 0], true),   // the whole line
        ([0, 0, 2, 27], true),  // several lines
    ] {
        let actions = h.code_actions(&uri, range).await;
        assert_eq!(
            selection(&actions),
            offered,
            "{range:?}: {:?}",
            titles(&actions)
        );
    }
}

// 6. The first line of a hint says what it is.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_line_of_a_hunk_hint_names_the_task_and_the_change() {
    let (mut h, uri) = reviewing(Profile::strict()).await;
    let found = hunks(&h.diagnostics(&uri).await);
    let first_lines: Vec<&str> = found
        .iter()
        .map(|d| d["message"].as_str().unwrap().lines().next().unwrap())
        .collect();
    assert_eq!(
        first_lines,
        [
            "Handoff #1 (greet loudly): replaces 2 lines with 1 — return (\"hello, \" + name).upper()",
            "Handoff #1 (greet loudly): replaces 1 line — return \"goodbye, \" + name",
        ]
    );
}

// A file the agent created is reviewed where the user opens it, before it exists on disk.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_the_agent_created_in_new_folders_is_shown_and_accepted_in_an_empty_buffer() {
    let fixture = Fixture::new();
    let task = fixture.task("write notes", 1).await;
    assert_eq!(task.files_changed, vec!["docs/notes/NOTES.md".to_string()]);
    let mut h = Harness::start(fixture, Profile::neovim()).await;
    let uri = h.open_unsaved("docs/notes/NOTES.md").await;
    let found = hunks(&h.diagnostics(&uri).await);
    assert_eq!(found.len(), 1, "{found:#?}");
    h.execute("handoff.accept", accept(&uri, None))
        .await
        .expect("accept all of the new file");
    h.eventually("the buffer to hold the file", Duration::from_secs(5), |h| {
        h.text(&uri) == super::fixture::NOTES
    })
    .await;
    // The buffer holds it; the disk is the user's until they write it.
    assert!(!h.fixture.path().join("docs").exists());
    // Recorded once the editor confirms the edit.
    h.eventually("the decision to be recorded", Duration::from_secs(5), |h| {
        let review = h
            .fixture
            .engine()
            .review(crate::engine::task::TaskId(1))
            .unwrap();
        json!(review.resolved.get("docs/notes/NOTES.md")) == json!({ "0": "accepted" })
    })
    .await;
}
