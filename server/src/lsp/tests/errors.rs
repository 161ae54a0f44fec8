//! Failed requests carry a JSON-RPC code and a `data.kind` a client can act on,
//! besides the message for the user.

use serde_json::{json, Value};

use super::harness::{Fixture, Harness, Profile};

fn kind(error: &Value) -> (i64, &str) {
    (
        error["code"].as_i64().unwrap(),
        error["data"]["kind"].as_str().unwrap_or("(none)"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_say_what_kind_of_failure_they_are() {
    let mut h = Harness::start(Fixture::with_tasks().await, Profile::neovim()).await;
    let uri = h.open("greet.py").await;
    let closed = h.uri("other.py");

    let err = h
        .execute(
            "handoff.accept",
            json!({ "task": 1, "uri": closed, "hunk": 0 }),
        )
        .await
        .unwrap_err();
    assert_eq!(kind(&err), (-32010, "notFound"), "{err:#}");
    let err = h
        .execute("handoff.showLog", json!({ "task": 99, "uri": uri }))
        .await
        .unwrap_err();
    assert_eq!(kind(&err), (-32010, "notFound"), "{err:#}");

    let err = h
        .execute("handoff.accept", json!({ "nonsense": true }))
        .await
        .unwrap_err();
    assert_eq!(kind(&err), (-32602, "invalidArgument"), "{err:#}");

    let err = h
        .execute(
            "handoff.delegate",
            json!({ "kind": "selection", "uri": uri, "version": 0, "instruction": "x",
                    "range": { "start": { "line": 0, "character": 0 }, "end": { "line": 2, "character": 0 } } }),
        )
        .await
        .unwrap_err();
    assert_eq!(kind(&err), (-32801, "staleDocument"), "{err:#}");

    h.fixture.fake.set_unreachable(true);
    let err = h
        .execute("handoff.cancel", json!({ "task": 2, "uri": uri }))
        .await
        .unwrap_err();
    assert_eq!(kind(&err), (-32011, "dockerUnreachable"), "{err:#}");
    // Shown to the user already (errorMessages is on): a plugin need not show it again.
    assert_eq!(err["data"]["shown"], true, "{err:#}");
}
