//! The question about a repository's untrusted configuration: asked once per content,
//! recognisable by its data (so that an editor can ask in its own way), and asked
//! again when the content changes after it was trusted.

use std::time::Duration;

use serde_json::{json, Value};

use super::harness::{Fixture, Harness, Profile};

const WITHIN: Duration = Duration::from_secs(5);

fn questions(h: &Harness) -> Vec<Value> {
    h.sent("window/showMessageRequest")
}

/// Whether `value` names the fixture's working tree.
fn is_repository(h: &Harness, value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|p| std::path::Path::new(p) == h.fixture.path())
}

fn is_question(m: &Value) -> bool {
    m["method"] == "window/showMessageRequest"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_configuration_that_changes_is_asked_about_again() {
    // The client answers "Trust" (the first action), as a user picking it would.
    let mut h = Harness::start(Fixture::untrusted(), Profile::vscode()).await;
    let uri = h.open("greet.py").await;
    let question = h.wait_for("the trust question", WITHIN, is_question).await;
    let repository = question["params"]["actions"][0]["repository"].clone();
    assert!(is_repository(&h, &repository), "{question}");
    let sha256 = crate::trust::config_hash(h.fixture.path()).unwrap();
    assert_eq!(
        question["params"]["actions"],
        json!([
            {
                "title": "Trust",
                "repository": repository,
                "ignored": ["default_agent", "agents.fake (a new profile)"],
                "sha256": sha256,
            },
            { "title": "Not now" },
        ]),
        "the question carries what it is about, as data"
    );
    let message = question["params"]["message"].as_str().unwrap();
    assert!(message.contains("agents.fake"), "{message}");
    h.eventually("the trust to be recorded", WITHIN, |h| h.said("trusted"))
        .await;
    assert!(crate::trust::state(h.fixture.path()).unwrap().is_trusted());

    // Opening the repository's files again asks nothing: it is trusted as it is.
    h.notify(
        "textDocument/didClose",
        json!({ "textDocument": { "uri": uri } }),
    )
    .await;
    h.open("greet.py").await;
    h.settle(Duration::from_millis(300)).await;
    assert_eq!(questions(&h).len(), 1, "asked once");

    // Someone changes the configuration (a `git pull`): the next file opened asks again.
    let config = h.fixture.path().join(".handoff.toml");
    let changed = std::fs::read_to_string(&config).unwrap() + "env = [\"TOKEN\"]\n";
    std::fs::write(&config, changed).unwrap();
    h.notify(
        "textDocument/didClose",
        json!({ "textDocument": { "uri": uri } }),
    )
    .await;
    h.open("greet.py").await;
    let again = h.wait_for("the question again", WITHIN, is_question).await;
    assert_eq!(again["params"]["actions"][0]["repository"], repository);
    assert_eq!(
        again["params"]["actions"][0]["ignored"],
        json!(["default_agent", "agents.fake (a new profile)"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_never_starts_on_trust_given_to_content_that_has_changed_since() {
    let mut h = Harness::start(Fixture::untrusted(), Profile::vscode()).await;
    let uri = h.open("greet.py").await;
    h.eventually("the trust to be recorded", WITHIN, |h| h.said("trusted"))
        .await;
    // The server opens the repository again, trusted.
    h.notify(
        "textDocument/didClose",
        json!({ "textDocument": { "uri": uri } }),
    )
    .await;
    h.open("greet.py").await;
    h.settle(Duration::from_millis(200)).await;
    let config = h.fixture.path().join(".handoff.toml");
    let changed = std::fs::read_to_string(&config).unwrap() + "# changed\n";
    std::fs::write(&config, changed).unwrap();
    // Delegating reads the configuration again: not trusted as it is now, so the fake
    // profile (a new profile of the repository's) does not exist, and the user is
    // asked about the new content.
    let answer = h
        .execute(
            "handoff.delegate",
            json!({ "kind": "prompt", "prompt": "do it", "uri": h.uri("greet.py"), "agent": "fake" }),
        )
        .await;
    let error = answer.expect_err("the untrusted profile is not there");
    assert!(
        error["message"].as_str().unwrap().contains("fake"),
        "{error}"
    );
    h.wait_for("the question about the new content", WITHIN, is_question)
        .await;
    assert_eq!(questions(&h).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_asks_in_its_own_way_trusts_with_the_command() {
    // The bundled extensions recognise the question by its data, ask the user in
    // their own way, answer `null`, and run `handoff.trust` on "Trust".
    let mut h = Harness::start(Fixture::untrusted(), Profile::never_answers()).await;
    h.open("greet.py").await;
    let question = h.wait_for("the trust question", WITHIN, is_question).await;
    let asked = &question["params"]["actions"][0];
    let repository = url::Url::from_directory_path(asked["repository"].as_str().unwrap())
        .unwrap()
        .to_string();
    let result = h
        .execute("handoff.trust", json!({ "uri": repository }))
        .await
        .expect("trusted");
    assert_eq!(result["trusted"], true, "{result}");
    assert_eq!(result["applied"], asked["ignored"], "{result}");
    assert!(crate::trust::state(h.fixture.path()).unwrap().is_trusted());
    assert!(
        !h.said("trusted"),
        "the server says nothing of a trust it did not give itself"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_that_changes_after_the_question_is_never_trusted_unseen() {
    let mut h = Harness::start(Fixture::untrusted(), Profile::never_answers()).await;
    let uri = h.open("greet.py").await;
    let question = h.wait_for("the trust question", WITHIN, is_question).await;
    let seen = question["params"]["actions"][0]["sha256"].clone();
    // The configuration changes while the user reads the question.
    let config = h.fixture.path().join(".handoff.toml");
    let changed = std::fs::read_to_string(&config).unwrap() + "env = [\"TOKEN\"]\n";
    std::fs::write(&config, changed).unwrap();
    let answer = h
        .execute("handoff.trust", json!({ "uri": uri, "sha256": seen }))
        .await;
    let error = answer.expect_err("not trusted");
    assert_eq!(error["code"], -32801, "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("changed since you were asked"),
        "{error}"
    );
    assert!(!crate::trust::state(h.fixture.path()).unwrap().is_trusted());
    // The user is asked about the new content, and can trust that.
    let again = h
        .wait_for("the question about the new content", WITHIN, is_question)
        .await;
    let now = again["params"]["actions"][0]["sha256"].clone();
    assert_ne!(now, seen);
    let result = h
        .execute("handoff.trust", json!({ "uri": uri, "sha256": now }))
        .await
        .expect("trusted");
    assert_eq!(result["trusted"], true, "{result}");
    assert!(crate::trust::state(h.fixture.path()).unwrap().is_trusted());
}
