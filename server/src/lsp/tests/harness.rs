//! An in-process LSP client for the server's unit tests: the real server (tower-lsp's
//! `Server` loop, with its request concurrency) on an in-memory duplex pipe, a real
//! git repository in a temp dir ([`Fixture`]), the real engine on the fake sandbox,
//! and a client that behaves like one of the editors Handoff meets ([`Profile`]).
//!
//! Every message the server sends is kept in [`Harness::log`], in order, for
//! assertions and snapshots.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, WriteHalf};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tower_lsp_server::{LspService, Server};

pub use super::clients::{Answers, Profile};
pub use super::fixture::{Fixture, GREET_DONE};
use crate::diff::{LineIndex, Position, PositionEncoding};
use crate::lsp::{Backend, Options};

/// How long the server may take to answer any request: a server that waits on the
/// client (or on anything unbounded) fails the test instead of hanging it.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

pub struct Harness {
    pub fixture: Fixture,
    pub profile: Profile,
    /// Every message from the server, in the order it came.
    pub log: Vec<Value>,
    /// The server's answer to `initialize`.
    pub initialized: Value,
    writer: WriteHalf<tokio::io::DuplexStream>,
    incoming: mpsc::UnboundedReceiver<Value>,
    next_id: i64,
    /// The client's copy of each open document: text and version.
    docs: HashMap<String, (String, i32)>,
    /// Answers the client sends later ([`Answers::ChangeFirst`]).
    delayed: Vec<(Instant, Value)>,
    /// Documents edited by an applied `workspace/applyEdit`, whose `didChange` is due.
    changed: Vec<String>,
    encoding: PositionEncoding,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The options the tests run the server with: short waits on the client.
pub fn test_options() -> Options {
    Options {
        client_timeout: Duration::from_millis(500),
        apply_edit_timeout: Duration::from_millis(1500),
        // No nudges within the wait: transcripts stay the same from run to run.
        apply_edit_nudge: Duration::from_secs(60),
        poll: Duration::from_millis(100),
    }
}

impl Harness {
    /// Starts the server, initializes it as `profile` and opens nothing yet.
    pub async fn start(fixture: Fixture, profile: Profile) -> Harness {
        let (client_side, server_side) = tokio::io::duplex(1 << 22);
        let (server_read, server_write) = tokio::io::split(server_side);
        let fake = fixture.fake.clone();
        let (service, socket) = LspService::build(move |client| {
            Backend::with_options(
                client,
                Arc::new(move |_: &crate::config::Config| fake.clone()),
                test_options(),
            )
        })
        .finish();
        let server = tokio::spawn(Server::new(server_read, server_write, socket).serve(service));
        let (client_read, writer) = tokio::io::split(client_side);
        let (tx, incoming) = mpsc::unbounded_channel();
        tokio::spawn(read_messages(BufReader::new(client_read), tx));
        let mut h = Harness {
            fixture,
            profile,
            log: Vec::new(),
            initialized: Value::Null,
            writer,
            incoming,
            next_id: 0,
            docs: HashMap::new(),
            delayed: Vec::new(),
            changed: Vec::new(),
            encoding: PositionEncoding::Utf16,
            server,
        };
        let root = h.uri("");
        let init = h
            .request(
                "initialize",
                json!({
                    "processId": null,
                    "rootUri": root,
                    "capabilities": h.profile.capabilities.clone(),
                    "initializationOptions": h.profile.initialization_options.clone(),
                    "workspaceFolders": [{ "uri": root, "name": "repo" }],
                }),
            )
            .await
            .expect("initialize");
        if init["capabilities"]["positionEncoding"] == "utf-8" {
            h.encoding = PositionEncoding::Utf8;
        }
        h.initialized = init;
        h.notify("initialized", json!({})).await;
        h
    }

    /// `file://` URI of a path in the repository.
    pub fn uri(&self, rel: &str) -> String {
        let path = self.fixture.path().canonicalize().unwrap().join(rel);
        url::Url::from_file_path(path).unwrap().to_string()
    }

    pub async fn send(&mut self, message: Value) {
        let body = serde_json::to_string(&message).unwrap();
        let frame = format!("Content-Length: {}\r\n\r\n{body}", body.len());
        self.writer.write_all(frame.as_bytes()).await.unwrap();
        self.writer.flush().await.unwrap();
    }

    pub async fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({ "jsonrpc": "2.0", "method": method, "params": params }))
            .await;
    }

    /// Sends a request and returns its result (or its error), handling whatever the
    /// server sends meanwhile. Panics if the answer takes longer than 5 s.
    pub async fn request(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        self.next_id += 1;
        let id = self.next_id;
        self.send(json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }))
            .await;
        let deadline = Instant::now() + ANSWER_WITHIN;
        loop {
            let Some(message) = self.next_message(deadline).await else {
                panic!(
                    "[{}] the server did not answer {method} within {ANSWER_WITHIN:?}",
                    self.profile.name
                );
            };
            if message.get("method").is_none() && message["id"] == json!(id) {
                return match message.get("error") {
                    Some(error) => Err(error.clone()),
                    None => Ok(message["result"].clone()),
                };
            }
            self.handle(message).await;
        }
    }

    pub async fn execute(&mut self, command: &str, args: Value) -> Result<Value, Value> {
        self.request(
            "workspace/executeCommand",
            json!({ "command": command, "arguments": [args] }),
        )
        .await
    }

    /// Opens a file of the repository as the editor has it on disk.
    pub async fn open(&mut self, rel: &str) -> String {
        let text = std::fs::read_to_string(self.fixture.path().join(rel)).unwrap();
        let uri = self.uri(rel);
        self.docs.insert(uri.clone(), (text.clone(), 1));
        self.notify(
            "textDocument/didOpen",
            json!({ "textDocument": { "uri": uri, "languageId": "python", "version": 1, "text": text } }),
        )
        .await;
        uri
    }

    /// Opens a file of the repository that is not on disk (yet), as an editor opens a
    /// path that does not exist: an empty buffer.
    pub async fn open_unsaved(&mut self, rel: &str) -> String {
        let uri = self.uri(rel);
        self.docs.insert(uri.clone(), (String::new(), 1));
        self.notify(
            "textDocument/didOpen",
            json!({ "textDocument": { "uri": uri, "languageId": "markdown", "version": 1, "text": "" } }),
        )
        .await;
        uri
    }

    /// The client's text of `uri`.
    pub fn text(&self, uri: &str) -> String {
        self.docs[uri].0.clone()
    }

    /// Replaces the whole text of `uri`, as a user's edit.
    pub async fn edit(&mut self, uri: &str, text: &str) {
        let version = {
            let doc = self.docs.get_mut(uri).unwrap();
            doc.0 = text.to_string();
            doc.1 += 1;
            doc.1
        };
        self.did_change(uri, version, json!([{ "text": text }]))
            .await;
    }

    async fn did_change(&mut self, uri: &str, version: i32, changes: Value) {
        self.notify(
            "textDocument/didChange",
            json!({ "textDocument": { "uri": uri, "version": version }, "contentChanges": changes }),
        )
        .await;
    }

    /// Code actions for `range` (`[line, character, line, character]`) of `uri`.
    pub async fn code_actions(&mut self, uri: &str, range: [u32; 4]) -> Vec<Value> {
        let result = self
            .request(
                "textDocument/codeAction",
                json!({
                    "textDocument": { "uri": uri },
                    "range": range_json(range),
                    "context": { "diagnostics": [] },
                }),
            )
            .await
            .expect("codeAction");
        result.as_array().cloned().unwrap_or_default()
    }

    /// Handles messages for `duration`.
    pub async fn pump(&mut self, duration: Duration) {
        let deadline = Instant::now() + duration;
        while let Some(message) = self.next_message(deadline).await {
            self.handle(message).await;
        }
    }

    /// Handles messages until none came for `quiet` (at most 5 s): what the server
    /// sends in the background after an answer has arrived.
    pub async fn settle(&mut self, quiet: Duration) {
        let end = Instant::now() + ANSWER_WITHIN;
        loop {
            let deadline = (Instant::now() + quiet).min(end);
            match self.next_message(deadline).await {
                Some(message) => self.handle(message).await,
                None => return,
            }
        }
    }

    /// Handles messages until one that `matches` arrives (and returns it); panics
    /// after `within`.
    pub async fn wait_for(
        &mut self,
        what: &str,
        within: Duration,
        matches: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let Some(message) = self.next_message(deadline).await else {
                panic!(
                    "[{}] timed out after {within:?} waiting for {what}; got:\n{:#}",
                    self.profile.name,
                    json!(self.log)
                );
            };
            let found = matches(&message);
            self.handle(message.clone()).await;
            if found {
                return message;
            }
        }
    }

    /// Handles messages until `holds` is true of everything received so far; panics
    /// after `within`.
    pub async fn eventually(
        &mut self,
        what: &str,
        within: Duration,
        holds: impl Fn(&Harness) -> bool,
    ) {
        let deadline = Instant::now() + within;
        while !holds(self) {
            let Some(message) = self.next_message(deadline).await else {
                panic!(
                    "[{}] timed out after {within:?} waiting for {what}; got:\n{:#}",
                    self.profile.name,
                    json!(self.log)
                );
            };
            self.handle(message).await;
        }
    }

    /// Whether the server said something containing `text` with `window/showMessage`.
    pub fn said(&self, text: &str) -> bool {
        self.sent("window/showMessage").iter().any(|m| {
            m["params"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(text))
        })
    }

    /// The diagnostics last published for `uri`, waiting up to 5 s for the first.
    pub async fn diagnostics(&mut self, uri: &str) -> Vec<Value> {
        if self.last_diagnostics(uri).is_none() {
            self.wait_for("diagnostics", ANSWER_WITHIN, |m| {
                m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == uri
            })
            .await;
        }
        self.last_diagnostics(uri).unwrap_or_default()
    }

    /// The diagnostics published for the client's current text of `uri` (the last
    /// publication, once it carries the document's version), waiting up to 5 s: a
    /// publication for an older version may still be followed by one for this.
    pub async fn current_diagnostics(&mut self, uri: &str) -> Vec<Value> {
        let version = self.docs[uri].1;
        let uri_owned = uri.to_string();
        self.eventually(
            "diagnostics for the current version",
            ANSWER_WITHIN,
            move |h| {
                h.log
                    .iter()
                    .rev()
                    .find(|m| {
                        m["method"] == "textDocument/publishDiagnostics"
                            && m["params"]["uri"] == uri_owned.as_str()
                    })
                    .is_some_and(|m| m["params"]["version"] == version)
            },
        )
        .await;
        self.last_diagnostics(uri).unwrap_or_default()
    }

    pub fn last_diagnostics(&self, uri: &str) -> Option<Vec<Value>> {
        self.log
            .iter()
            .rev()
            .find(|m| m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == uri)
            .map(|m| {
                m["params"]["diagnostics"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
    }

    /// Every message from the server with this method.
    pub fn sent(&self, method: &str) -> Vec<Value> {
        self.log
            .iter()
            .filter(|m| m["method"] == method)
            .cloned()
            .collect()
    }

    /// The next message from the server before `deadline`, sending due delayed
    /// answers meanwhile.
    async fn next_message(&mut self, deadline: Instant) -> Option<Value> {
        loop {
            self.delayed.sort_by_key(|(at, _)| *at);
            let wake = match self.delayed.first() {
                Some((at, _)) if *at < deadline => *at,
                _ => deadline,
            };
            match tokio::time::timeout_at(wake, self.incoming.recv()).await {
                Ok(message) => return message,
                Err(_) if wake < deadline => {
                    let (_, answer) = self.delayed.remove(0);
                    self.send(answer).await;
                }
                Err(_) => return None,
            }
        }
    }

    /// Logs a message from the server and answers it if it is a request.
    async fn handle(&mut self, message: Value) {
        self.log.push(message.clone());
        let (Some(id), Some(method)) = (message.get("id"), message["method"].as_str()) else {
            return;
        };
        let params = &message["params"];
        let result = match method {
            "workspace/applyEdit" => {
                let applied = match self.profile.answers {
                    Answers::Never {
                        applies_edits: false,
                    } => false,
                    _ => self.apply(&params["edit"]),
                };
                if let Answers::ChangeFirst(_) | Answers::Never { .. } = self.profile.answers {
                    self.send_changes().await;
                }
                json!({ "applied": applied })
            }
            "window/showMessageRequest" => params["actions"][0].clone(),
            "window/showDocument" => json!({ "success": true }),
            _ => Value::Null,
        };
        let answer = json!({ "jsonrpc": "2.0", "id": id.clone(), "result": result });
        match self.profile.answers {
            Answers::Promptly => {
                self.send(answer).await;
                self.send_changes().await;
            }
            Answers::ChangeFirst(delay) => self.delayed.push((Instant::now() + delay, answer)),
            Answers::Never { .. } => {}
        }
    }

    /// Applies a `WorkspaceEdit` as the client would (a code action's edit) and sends
    /// the `didChange`.
    pub async fn apply_edit(&mut self, edit: &Value) {
        assert!(
            self.apply(edit),
            "the edit does not fit the client's document"
        );
        self.send_changes().await;
    }

    /// Applies a `WorkspaceEdit` to the client's documents; the `didChange`s go out
    /// with [`Self::send_changes`].
    fn apply(&mut self, edit: &Value) -> bool {
        let mut per_doc: Vec<(String, Vec<Value>)> = Vec::new();
        if let Some(changes) = edit["changes"].as_object() {
            for (uri, edits) in changes {
                per_doc.push((uri.clone(), edits.as_array().cloned().unwrap_or_default()));
            }
        }
        for change in edit["documentChanges"].as_array().into_iter().flatten() {
            let uri = change["textDocument"]["uri"].as_str().unwrap().to_string();
            if let Some(v) = change["textDocument"]["version"].as_i64() {
                if self.docs.get(&uri).map(|d| d.1 as i64) != Some(v) {
                    return false;
                }
            }
            per_doc.push((uri, change["edits"].as_array().cloned().unwrap_or_default()));
        }
        for (uri, edits) in per_doc {
            let Some((text, _)) = self.docs.get(&uri).cloned() else {
                return false;
            };
            let index = LineIndex::new(&text);
            let offset = |p: &Value| {
                index.offset(
                    Position::new(
                        p["line"].as_u64().unwrap() as u32,
                        p["character"].as_u64().unwrap() as u32,
                    ),
                    self.encoding,
                )
            };
            // Edits of one document never overlap; apply from the end.
            let mut spans: Vec<(usize, usize, String)> = edits
                .iter()
                .map(|e| {
                    (
                        offset(&e["range"]["start"]),
                        offset(&e["range"]["end"]),
                        e["newText"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            spans.sort_by_key(|s| std::cmp::Reverse(s.0));
            let mut new = text.clone();
            for (start, end, insert) in spans {
                new.replace_range(start..end, &insert);
            }
            let doc = self.docs.get_mut(&uri).unwrap();
            doc.0 = new;
            doc.1 += 1;
            self.changed.push(uri);
        }
        true
    }
}

impl Harness {
    async fn send_changes(&mut self) {
        for uri in std::mem::take(&mut self.changed) {
            let (text, version) = self.docs[&uri].clone();
            self.did_change(&uri, version, json!([{ "text": text }]))
                .await;
        }
    }
}

pub fn range_json([l1, c1, l2, c2]: [u32; 4]) -> Value {
    json!({ "start": { "line": l1, "character": c1 }, "end": { "line": l2, "character": c2 } })
}

async fn read_messages(
    mut reader: BufReader<tokio::io::ReadHalf<tokio::io::DuplexStream>>,
    tx: mpsc::UnboundedSender<Value>,
) {
    loop {
        let mut length = None;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some(n) = line.strip_prefix("Content-Length: ") {
                length = n.parse::<usize>().ok();
            }
        }
        let Some(length) = length else { return };
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).await.is_err() {
            return;
        }
        let Ok(message) = serde_json::from_slice(&body) else {
            return;
        };
        if tx.send(message).is_err() {
            return;
        }
    }
}
