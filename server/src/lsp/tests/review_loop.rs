//! The review loop (issue 11): comments on hunks, kept as pending, shown on the hunk,
//! and sent together as the task's next turn.

use serde_json::{json, Value};

use super::harness::{Fixture, Harness, Profile};

fn titles(actions: &[Value]) -> Vec<String> {
    actions
        .iter()
        .map(|a| a["title"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_comment_on_a_hunk_is_shown_and_sent_with_the_next_turn() {
    let mut h = Harness::start(Fixture::with_tasks().await, Profile::vscode()).await;
    let uri = h.open("greet.py").await;
    h.diagnostics(&uri).await;
    let offered = titles(&h.code_actions(&uri, [1, 0, 1, 0]).await);
    assert!(
        offered.contains(&"Comment on this change (Handoff #1)…".to_string()),
        "{offered:?}"
    );
    // Without text, a client that cannot ask is told how.
    let refused = h
        .execute(
            "handoff.comment",
            json!({ "task": 1, "uri": uri, "hunk": 0 }),
        )
        .await
        .expect_err("no text");
    assert_eq!(refused["data"]["kind"], "unsupported", "{refused}");
    let kept = h
        .execute(
            "handoff.comment",
            json!({ "task": 1, "uri": uri, "hunk": 0, "text": "shout less" }),
        )
        .await
        .unwrap();
    assert_eq!(kept["pending"], 1);
    h.settle(std::time::Duration::from_millis(300)).await;
    let found = h.last_diagnostics(&uri).unwrap();
    let comment = found
        .iter()
        .find(|d| {
            d["message"]
                .as_str()
                .unwrap_or_default()
                .contains("shout less")
        })
        .unwrap_or_else(|| panic!("the comment is shown: {found:#?}"));
    assert_eq!(comment["data"]["comment"], "shout less");
    let hunk = found
        .iter()
        .find(|d| d["data"]["hunk"] == 0 && d["data"]["comments"].is_array())
        .unwrap();
    assert_eq!(hunk["data"]["comments"], json!(["shout less"]));
    let offered = titles(&h.code_actions(&uri, [1, 0, 1, 0]).await);
    assert!(
        offered.contains(&"Send 1 comment to Handoff #1".to_string()),
        "{offered:?}"
    );
    let task = h
        .execute("handoff.sendComments", json!({ "task": 1, "uri": uri }))
        .await
        .unwrap();
    let reply = task["reply"].as_str().unwrap();
    assert!(
        reply.contains("Review comments on your changes (1)")
            && reply.contains("greet.py line")
            && reply.contains("shout less"),
        "{reply}"
    );
    assert!(h
        .fixture
        .engine()
        .pending_comments(handoff_id(1))
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_cannot_ask_for_text_is_offered_no_comment_action() {
    let mut h = Harness::start(Fixture::with_tasks().await, Profile::strict()).await;
    let uri = h.open("greet.py").await;
    h.diagnostics(&uri).await;
    let offered = titles(&h.code_actions(&uri, [1, 0, 1, 0]).await);
    assert!(
        !offered.iter().any(|t| t.starts_with("Comment")),
        "{offered:?}"
    );
}

fn handoff_id(n: u64) -> crate::engine::task::TaskId {
    crate::engine::task::TaskId(n)
}
