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
        "diagnostics after": h.current_diagnostics(&uri).await,
        "decisions": h.fixture.decisions(1),
    });

    let mark = h.log.len();
    let answer = h
        .execute(
            "handoff.delegate",
            json!({ "kind": "prompt", "prompt": "sleep", "uri": uri }),
        )
        .await;
    // The task runs (on a busy machine its start may take a while), then what follows
    // is longer than any client's delay in answering (see `Answers::ChangeFirst`).
    // A client told of tasks (progress, `handoff/taskChanged`) is waited for until it
    // was told that the task runs.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let running = h
            .fixture
            .engine()
            .get(TaskId(3))
            .is_ok_and(|t| t.state == crate::engine::task::TaskState::Running);
        let told = |method: &str, running: &dyn Fn(&Value) -> bool| {
            let about: Vec<&Value> = h.log[mark..]
                .iter()
                .filter(|m| m["method"] == method)
                .collect();
            about.is_empty() || about.iter().any(|m| running(m))
        };
        let told = told("handoff/taskChanged", &|m| {
            m["params"]["task"]["state"] == "running"
        }) && told("$/progress", &|m| {
            m["params"]["value"]["message"]
                .as_str()
                .is_some_and(|s| s.contains("running"))
        });
        if running && told {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "task #3 did not run, or the client was not told: {:#}",
            json!(h.log[mark..])
        );
        h.pump(Duration::from_millis(50)).await;
    }
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
    // How many `handoff/taskChanged` a start sends depends on the moment the watcher
    // looks (a task is briefly `starting`): keep each task's last one.
    let mut seen = std::collections::HashSet::new();
    told.reverse();
    told.retain(|m| {
        m["method"] != "handoff/taskChanged"
            || seen.insert(m["params"]["task"]["id"].as_u64().unwrap_or_default())
    });
    told.reverse();
    // Likewise whether the progress began at `starting` and reported `running` or
    // began at `running`: keep the begin, with the last thing progress said.
    let mut last_said = std::collections::HashMap::new();
    for m in told.iter().filter(|m| m["method"] == "$/progress") {
        if let Some(said) = m["params"]["value"]["message"].as_str() {
            last_said.insert(m["params"]["token"].to_string(), said.to_string());
        }
    }
    told.retain(|m| m["method"] != "$/progress" || m["params"]["value"]["kind"] != "report");
    for m in told.iter_mut().filter(|m| m["method"] == "$/progress") {
        if m["params"]["value"]["kind"] == "begin" {
            if let Some(said) = last_said.get(&m["params"]["token"].to_string()) {
                m["params"]["value"]["message"] = json!(said);
            }
        }
    }
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
