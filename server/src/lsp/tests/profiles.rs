//! The server's answers and messages, per kind of client, as JSON snapshots: one
//! scenario (open a file with a finished task's hunks and a running task's TODO, ask
//! for code actions and lenses, accept a hunk, delegate a task) run against each
//! profile of `harness`. A change to what any client gets shows up in review.

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::harness::{Fixture, Harness, Profile};
use crate::engine::task::TaskId;

async fn scenario(profile: Profile) -> Value {
    let name = profile.name;
    let fixture = Fixture::with_tasks().await;
    let repo = fixture.path().canonicalize().unwrap().display().to_string();
    // Container names (in progress tokens) hold a hash of the repository's path.
    let key = fixture
        .engine()
        .container_name(TaskId(0))
        .trim_end_matches('0')
        .to_string();
    let mut h = Harness::start(fixture, profile).await;
    let uri = h.open("greet.py").await;
    h.diagnostics(&uri).await;
    h.pump(Duration::from_millis(300)).await;
    let diagnostics = h.last_diagnostics(&uri);

    let mut actions = Map::new();
    for (what, range) in [
        ("the TODO of running task #2 (line 6)", [6, 0, 6, 0]),
        (
            "the first hunk of task #1, its origin (line 1)",
            [1, 0, 1, 0],
        ),
        ("one character (line 2)", [2, 4, 2, 5]),
        ("a whole function (lines 0-2)", [0, 0, 3, 0]),
    ] {
        actions.insert(what.into(), json!(h.code_actions(&uri, range).await));
    }
    let lenses = h
        .request(
            "textDocument/codeLens",
            json!({ "textDocument": { "uri": uri } }),
        )
        .await;

    let mark = h.log.len();
    let answer = h
        .execute(
            "handoff.accept",
            json!({ "task": 1, "uri": uri, "hunk": 0 }),
        )
        .await;
    // Past the wait for the edit's answer (1.5 s in the tests), then until quiet.
    h.pump(Duration::from_millis(1700)).await;
    h.settle(Duration::from_millis(900)).await;
    let accept = json!({
        "answer": result(answer),
        "applyEdit": params_of(&h.log[mark..], "workspace/applyEdit"),
        "messages": messages(&h.log[mark..]),
        "diagnostics after": h.last_diagnostics(&uri),
        "decisions": h.fixture.decisions(1),
    });

    let mark = h.log.len();
    let answer = h
        .execute(
            "handoff.delegate",
            json!({ "kind": "prompt", "prompt": "sleep", "uri": uri }),
        )
        .await;
    // Longer than any client's delay in answering (see `Answers::ChangeFirst`).
    h.settle(Duration::from_millis(900)).await;
    let mut told: Vec<Value> = h.log[mark..]
        .iter()
        .filter(|m| {
            let method = m["method"].as_str().unwrap_or_default();
            method.starts_with("handoff/")
                || method.contains("rogress")
                || method == "window/showMessage"
        })
        .map(|m| json!({ "method": m["method"], "params": m["params"] }))
        .collect();
    told.sort_by_key(|m| m["method"].as_str().unwrap_or_default().to_string());
    let delegate = json!({ "answer": result(answer), "messages": told });

    let mut methods: Vec<String> = h
        .log
        .iter()
        .filter_map(|m| m["method"].as_str().map(String::from))
        .collect();
    methods.sort();
    methods.dedup();

    let transcript = json!({
        "profile": name,
        "initialize": h.initialized,
        "diagnostics": diagnostics,
        "codeActions": actions,
        "codeLens": result(lenses),
        "accept": accept,
        "delegate": delegate,
        "methods received": methods,
    });
    redact(transcript, &repo, &key)
}

fn result(answer: Result<Value, Value>) -> Value {
    match answer {
        Ok(v) => json!({ "result": v }),
        Err(e) => json!({ "error": e }),
    }
}

fn params_of(messages: &[Value], method: &str) -> Value {
    json!(messages
        .iter()
        .filter(|m| m["method"] == method)
        .map(|m| m["params"].clone())
        .collect::<Vec<_>>())
}

/// `window/showMessage` texts, sorted (they come from concurrent work).
fn messages(messages: &[Value]) -> Value {
    let mut said: Vec<String> = messages
        .iter()
        .filter(|m| m["method"] == "window/showMessage")
        .map(|m| {
            format!(
                "{}: {}",
                m["params"]["type"],
                m["params"]["message"].as_str().unwrap_or_default()
            )
        })
        .collect();
    said.sort();
    json!(said)
}

/// Takes out what differs between runs: paths, hashes, times, durations.
fn redact(value: Value, repo: &str, key: &str) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let k = k.replace(repo, "$REPO");
                    let v = match k.as_str() {
                        "created_at" | "started_at" | "finished_at" if !v.is_null() => {
                            json!("$TIME")
                        }
                        "base_commit" | "head_commit" | "workspace_base" if !v.is_null() => {
                            json!("$SHA")
                        }
                        "phases_ms" => json!("$MS"),
                        "version" if v.is_string() => json!("$VERSION"),
                        _ => redact(v, repo, key),
                    };
                    (k, v)
                })
                .collect(),
        ),
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|v| redact(v, repo, key)).collect())
        }
        Value::String(s) => {
            let s = s.replace(repo, "$REPO").replace(key, "handoff-$REPOKEY-");
            Value::String(
                s.split(' ')
                    .map(|word| if is_duration(word) { "$DURATION" } else { word })
                    .collect::<Vec<_>>()
                    .join(" "),
            )
        }
        other => other,
    }
}

/// `42s`, `1m32s`, `2h05m`.
fn is_duration(word: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    let Some(rest) = word.strip_suffix(['s', 'm']) else {
        return false;
    };
    match rest.split_once(['m', 'h']) {
        Some((a, b)) => digits(a) && digits(b),
        None => digits(rest),
    }
}

macro_rules! profile_snapshot {
    ($($test:ident: $profile:expr;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $test() {
            let transcript = scenario($profile).await;
            insta::assert_snapshot!(serde_json::to_string_pretty(&transcript).unwrap());
        }
    )*};
}

profile_snapshot! {
    vscode_like_client: Profile::vscode();
    neovim_like_client: Profile::neovim();
    strict_minimal_client: Profile::strict();
    client_that_never_answers: Profile::never_answers();
    client_that_sends_did_change_before_answering: Profile::change_first();
    ale_like_client: Profile::ale();
}

#[test]
fn durations_are_told_apart_from_words() {
    for word in ["0s", "42s", "1m32s", "2h05m"] {
        assert!(is_duration(word), "{word}");
    }
    for word in ["s", "running", "m", "1", "#2", "5ms1", "h1m"] {
        assert!(!is_duration(word), "{word}");
    }
}
