//! The language server at the trust boundary (issue 8): it acts only on files inside
//! the client's workspace folders, and never accepts changes to tool settings in bulk.

use serde_json::{json, Value};

use super::harness::{Fixture, Harness, Profile};

fn titles(actions: &[Value]) -> Vec<String> {
    actions
        .iter()
        .map(|a| a["title"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_act_only_on_files_inside_the_workspace_folders() {
    let mut h = Harness::start(Fixture::new(), Profile::vscode()).await;
    let elsewhere = tempfile::tempdir().unwrap();
    let outside = format!("file://{}/x.py", elsewhere.path().display());
    let climbing = format!("{}/../../etc/passwd", h.uri("greet.py"));
    for uri in [outside, climbing] {
        let answer = h
            .execute(
                "handoff.delegate",
                json!({ "kind": "prompt", "prompt": "do it", "uri": uri }),
            )
            .await;
        let error = answer.expect_err("refused");
        assert_eq!(error["code"], -32602, "{error}");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains("workspace folders"), "{uri}: {message}");
    }
    assert!(
        h.fixture.engine().list().unwrap().is_empty(),
        "no task started"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_to_tool_settings_are_accepted_one_by_one_never_all_at_once() {
    let fixture = Fixture::new();
    let task = fixture.task("tweak the config", 1).await;
    assert_eq!(task.sensitive_files, vec![".handoff.toml".to_string()]);
    let mut h = Harness::start(fixture, Profile::vscode()).await;
    let config = h.open(".handoff.toml").await;
    let found = h.diagnostics(&config).await;
    let hunk = found
        .iter()
        .find(|d| d["source"] == "handoff")
        .expect("the change to .handoff.toml is shown");
    assert_eq!(hunk["data"]["sensitive"], true, "{hunk}");
    let offered = titles(&h.code_actions(&config, [0, 0, 9, 0]).await);
    assert!(
        !offered
            .iter()
            .any(|t| t.to_lowercase().contains("accept all")),
        "{offered:?}"
    );
    let all = h
        .execute(
            "handoff.accept",
            json!({ "task": 1, "uri": config, "hunk": null }),
        )
        .await;
    let error = all.expect_err("accept all is refused");
    assert!(
        error["message"].as_str().unwrap().contains("one by one"),
        "{error}"
    );
    // In an ordinary file of the same task, "accept all" is offered.
    let greet = h.open("greet.py").await;
    h.diagnostics(&greet).await;
    let offered = titles(&h.code_actions(&greet, [0, 0, 9, 0]).await);
    assert!(
        offered
            .iter()
            .any(|t| t.to_lowercase().contains("accept all")),
        "{offered:?}"
    );
}
