//! Codex CLI's `codex exec --json` output.
//!
//! The event shapes follow `codex-rs/exec/src/exec_events.rs` in openai/codex
//! (`ThreadEvent`, `ThreadItem`, `ThreadItemDetails`), and which events appear when
//! follows `codex-rs/exec/src/event_processor_with_jsonl_output.rs`: `thread.started`,
//! `turn.started`, `item.started` / `item.updated` / `item.completed` around each
//! item, then `turn.completed` (with the thread's token totals so far) or
//! `turn.failed`. `error` events are also sent for errors Codex retries, so only the
//! end of the turn decides whether the run failed.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{content_text, push_error, Entry, TokenUsage, Transcript};

/// Reads a whole `codex exec --json` log.
pub fn parse(text: &str) -> Transcript {
    super::parse_lines(text, parse_line)
}

/// Adds one JSONL event to `transcript`. Blank lines are skipped; anything not
/// understood is kept as [`Entry::Raw`].
pub fn parse_line(transcript: &mut Transcript, line: &str) {
    let json = line.trim();
    if json.is_empty() {
        return;
    }
    // Through `Value` first: a `web_search` item repeats the `id` key (the item's and
    // the search's), which a direct typed parse rejects as a duplicate field.
    let event = serde_json::from_str::<Value>(json)
        .ok()
        .and_then(|value| Event::deserialize(value).ok());
    match event {
        Some(event) => apply(transcript, event, line),
        None => transcript.entries.push(Entry::Raw(line.trim_end().into())),
    }
}

#[derive(Deserialize)]
#[serde(tag = "type")]
enum Event {
    #[serde(rename = "thread.started")]
    ThreadStarted { thread_id: String },
    #[serde(rename = "turn.started")]
    TurnStarted {},
    #[serde(rename = "turn.completed")]
    TurnCompleted { usage: Option<Usage> },
    #[serde(rename = "turn.failed")]
    TurnFailed { error: Option<ErrorBody> },
    #[serde(rename = "item.started")]
    ItemStarted { item: Item },
    #[serde(rename = "item.updated")]
    ItemUpdated { item: Item },
    #[serde(rename = "item.completed")]
    ItemCompleted { item: Item },
    #[serde(rename = "error")]
    Error { message: String },
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    cached_input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
}

#[derive(Deserialize)]
struct ErrorBody {
    message: String,
}

/// All item types in one struct: each type uses a few of these fields, and a missing
/// one should cost a detail, not the line.
#[derive(Deserialize)]
struct Item {
    #[serde(default)]
    id: String,
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
    message: Option<String>,
    command: Option<String>,
    aggregated_output: Option<String>,
    exit_code: Option<i64>,
    status: Option<String>,
    changes: Option<Value>,
    server: Option<String>,
    tool: Option<String>,
    arguments: Option<Value>,
    result: Option<Value>,
    error: Option<ErrorBody>,
    query: Option<String>,
    items: Option<Value>,
}

fn apply(transcript: &mut Transcript, event: Event, line: &str) {
    match event {
        Event::ThreadStarted { thread_id } => {
            if super::is_session_id(&thread_id) {
                transcript.session_id = Some(thread_id);
            }
        }
        Event::TurnStarted {} => transcript.turns += 1,
        Event::TurnCompleted { usage } => {
            // The usage is the thread's running total, not the turn's.
            if let Some(usage) = usage {
                transcript.usage = Some(TokenUsage {
                    input_tokens: usage.input_tokens,
                    cached_input_tokens: usage.cached_input_tokens,
                    output_tokens: usage.output_tokens,
                });
            }
            // Errors before a completed turn were retried successfully.
            transcript.is_error = false;
            transcript.error = None;
        }
        Event::TurnFailed { error } => {
            let message = error.map_or_else(|| "turn failed".to_string(), |e| e.message);
            fail(transcript, message);
        }
        Event::Error { message } => fail(transcript, message),
        Event::ItemStarted { item } | Event::ItemUpdated { item } => {
            item_progress(transcript, item)
        }
        Event::ItemCompleted { item } => item_completed(transcript, item, line),
    }
}

fn fail(transcript: &mut Transcript, message: String) {
    push_error(transcript, message.clone());
    transcript.is_error = true;
    transcript.error = Some(message);
}

/// Tool calls are shown as soon as they start, so a log read during the run shows
/// the command that is running; everything else waits for its final form.
fn item_progress(transcript: &mut Transcript, item: Item) {
    if matches!(
        item.kind.as_str(),
        "command_execution" | "mcp_tool_call" | "web_search"
    ) {
        ensure_call(transcript, &item);
    }
}

fn item_completed(transcript: &mut Transcript, item: Item, line: &str) {
    match item.kind.as_str() {
        "agent_message" | "plan" => {
            if let Some(text) = item.text.filter(|text| !text.trim().is_empty()) {
                transcript.entries.push(Entry::AssistantText(text));
            }
        }
        // Reasoning summaries are the model's notes to itself, left out like
        // Claude's thinking blocks.
        "reasoning" => {}
        "command_execution" | "mcp_tool_call" | "web_search" => {
            ensure_call(transcript, &item);
            if let Some(result) = tool_result(&item) {
                transcript.entries.push(result);
            }
        }
        "file_change" => {
            let changes = item.changes.clone().unwrap_or(Value::Null);
            transcript.entries.push(Entry::ToolCall {
                id: item.id.clone(),
                name: "edit".into(),
                input: json!({ "changes": changes }),
            });
            if item.status.as_deref() == Some("failed") {
                transcript.entries.push(Entry::ToolResult {
                    id: item.id,
                    content: "the patch was not applied".into(),
                    is_error: true,
                });
            }
        }
        // Only the final list: it is re-sent whole on every update.
        "todo_list" => transcript.entries.push(Entry::ToolCall {
            id: item.id,
            name: "todo_list".into(),
            input: json!({ "items": item.items.unwrap_or(Value::Null) }),
        }),
        // Warnings (deprecations, config problems); the run goes on.
        "error" => {
            let message = item.message.or(item.text).unwrap_or_default();
            push_error(transcript, message);
        }
        _ => transcript.entries.push(Entry::Raw(line.trim_end().into())),
    }
}

/// Adds the call for a tool item unless its start was already recorded. The search
/// runs backwards because the start is usually a few entries back.
fn ensure_call(transcript: &mut Transcript, item: &Item) {
    let recorded = transcript
        .entries
        .iter()
        .rev()
        .any(|entry| matches!(entry, Entry::ToolCall { id, .. } if *id == item.id));
    if recorded {
        return;
    }
    let (name, input) = match item.kind.as_str() {
        "command_execution" => (
            "shell".to_string(),
            json!({ "command": item.command.clone().unwrap_or_default() }),
        ),
        "mcp_tool_call" => (
            format!(
                "{}/{}",
                item.server.as_deref().unwrap_or("mcp"),
                item.tool.as_deref().unwrap_or("tool")
            ),
            item.arguments.clone().unwrap_or(Value::Null),
        ),
        _ => (
            "web_search".to_string(),
            json!({ "query": item.query.clone().unwrap_or_default() }),
        ),
    };
    transcript.entries.push(Entry::ToolCall {
        id: item.id.clone(),
        name,
        input,
    });
}

/// The result of a finished tool item; web searches report none.
fn tool_result(item: &Item) -> Option<Entry> {
    let failed = matches!(item.status.as_deref(), Some("failed" | "declined"));
    let (content, is_error) = match item.kind.as_str() {
        "command_execution" => {
            let output = item.aggregated_output.as_deref().unwrap_or_default();
            let output = output.trim_end();
            match (item.status.as_deref(), item.exit_code) {
                (Some("declined"), _) => ("the command was declined".to_string(), true),
                (_, Some(code)) if code != 0 => (format!("exit code {code}\n{output}"), true),
                _ => (output.to_string(), failed),
            }
        }
        "mcp_tool_call" => match (&item.error, &item.result) {
            (Some(error), _) => (error.message.clone(), true),
            (None, Some(result)) => (
                content_text(result.get("content").unwrap_or(&Value::Null)),
                failed,
            ),
            (None, None) => (String::new(), failed),
        },
        _ => return None,
    };
    Some(Entry::ToolResult {
        id: item.id.clone(),
        content: content.trim_end().to_string(),
        is_error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::transcript::fixtures;
    use insta::assert_debug_snapshot;

    #[test]
    fn an_exec_with_commands_a_file_change_and_an_answer() {
        assert_debug_snapshot!(parse(fixtures::CODEX_EXEC));
    }

    #[test]
    fn an_exec_whose_turn_failed() {
        assert_debug_snapshot!(parse(fixtures::CODEX_FAILED));
    }

    /// Event lines in, the entries they add out.
    #[test]
    fn events_are_read_liberally() {
        let shell = |id: &str, command: &str| Entry::ToolCall {
            id: id.into(),
            name: "shell".into(),
            input: json!({ "command": command }),
        };
        let cases: &[(&str, &[&str], Vec<Entry>)] = &[
            (
                "a command seen only when completed",
                &[
                    r#"{"type":"item.completed","item":{"id":"item_1","type":"command_execution","command":"ls","aggregated_output":"a\nb\n","exit_code":0,"status":"completed"}}"#,
                ],
                vec![
                    shell("item_1", "ls"),
                    Entry::ToolResult {
                        id: "item_1".into(),
                        content: "a\nb".into(),
                        is_error: false,
                    },
                ],
            ),
            (
                "started, updated and completed make one call",
                &[
                    r#"{"type":"item.started","item":{"id":"item_2","type":"command_execution","command":"make","aggregated_output":"","exit_code":null,"status":"in_progress"}}"#,
                    r#"{"type":"item.updated","item":{"id":"item_2","type":"command_execution","command":"make","aggregated_output":"cc","exit_code":null,"status":"in_progress"}}"#,
                    r#"{"type":"item.completed","item":{"id":"item_2","type":"command_execution","command":"make","aggregated_output":"","exit_code":null,"status":"declined"}}"#,
                ],
                vec![
                    shell("item_2", "make"),
                    Entry::ToolResult {
                        id: "item_2".into(),
                        content: "the command was declined".into(),
                        is_error: true,
                    },
                ],
            ),
            (
                "a web search repeats its id key",
                &[
                    r#"{"type":"item.completed","item":{"id":"item_3","type":"web_search","id":"ws_9","query":"serde flatten","action":{"type":"search"}}}"#,
                ],
                vec![Entry::ToolCall {
                    id: "ws_9".into(),
                    name: "web_search".into(),
                    input: json!({ "query": "serde flatten" }),
                }],
            ),
            (
                "an MCP call that failed",
                &[
                    r#"{"type":"item.completed","item":{"id":"item_4","type":"mcp_tool_call","server":"docs","tool":"search","arguments":{"q":"x"},"result":null,"error":{"message":"timed out"},"status":"failed"}}"#,
                ],
                vec![
                    Entry::ToolCall {
                        id: "item_4".into(),
                        name: "docs/search".into(),
                        input: json!({ "q": "x" }),
                    },
                    Entry::ToolResult {
                        id: "item_4".into(),
                        content: "timed out".into(),
                        is_error: true,
                    },
                ],
            ),
            (
                "an MCP call with text content",
                &[
                    r#"{"type":"item.completed","item":{"id":"item_5","type":"mcp_tool_call","server":"docs","tool":"get","arguments":{},"result":{"content":[{"type":"text","text":"found"}],"structured_content":null},"error":null,"status":"completed"}}"#,
                ],
                vec![
                    Entry::ToolCall {
                        id: "item_5".into(),
                        name: "docs/get".into(),
                        input: json!({}),
                    },
                    Entry::ToolResult {
                        id: "item_5".into(),
                        content: "found".into(),
                        is_error: false,
                    },
                ],
            ),
            (
                "a warning item, reasoning and an empty message",
                &[
                    r#"{"type":"item.completed","item":{"id":"item_6","type":"error","message":"model rerouted: a -> b"}}"#,
                    r#"{"type":"item.completed","item":{"id":"item_7","type":"reasoning","text":"**Thinking**"}}"#,
                    r#"{"type":"item.completed","item":{"id":"item_8","type":"agent_message","text":"  "}}"#,
                ],
                vec![Entry::Error {
                    message: "model rerouted: a -> b".into(),
                }],
            ),
            (
                "an unknown item type and an unknown event",
                &[
                    r#"{"type":"item.completed","item":{"id":"item_9","type":"collab_tool_call"}}"#,
                    r#"{"type":"request_user_input","id":"t","call_id":"c","questions":[]}"#,
                    "Reading prompt from stdin...",
                ],
                vec![
                    Entry::Raw(
                        r#"{"type":"item.completed","item":{"id":"item_9","type":"collab_tool_call"}}"#
                            .into(),
                    ),
                    Entry::Raw(
                        r#"{"type":"request_user_input","id":"t","call_id":"c","questions":[]}"#
                            .into(),
                    ),
                    Entry::Raw("Reading prompt from stdin...".into()),
                ],
            ),
        ];
        for (name, lines, expected) in cases {
            let transcript = parse(&lines.join("\n"));
            assert_eq!(&transcript.entries, expected, "{name}");
        }
    }

    #[test]
    fn a_retried_error_does_not_fail_the_run() {
        let transcript = parse(
            r#"{"type":"turn.started"}
{"type":"error","message":"Reconnecting... 1/5"}
{"type":"turn.completed","usage":{"input_tokens":10,"cached_input_tokens":0,"output_tokens":2}}"#,
        );
        assert!(!transcript.is_error);
        assert_eq!(transcript.error, None);
        assert_eq!(transcript.turns, 1);
    }
}
