//! Claude Code's `--output-format stream-json --verbose` output.
//!
//! One JSON object a line, as measured with Claude Code 2.1: a `system`/`init` line,
//! `assistant` and `user` lines that carry Messages API content blocks (`text`,
//! `tool_use`, `tool_result`), and a final `result` line with the session's totals.

use serde::Deserialize;
use serde_json::Value;

use super::{content_text, push_error, Entry, TokenUsage, Transcript};

/// Reads a whole stream-json log.
pub fn parse(text: &str) -> Transcript {
    super::parse_lines(text, parse_line)
}

/// Adds one line of stream-json output to `transcript`. Blank lines are skipped;
/// anything not understood is kept as [`Entry::Raw`].
pub fn parse_line(transcript: &mut Transcript, line: &str) {
    let json = line.trim();
    if json.is_empty() {
        return;
    }
    match serde_json::from_str::<Line>(json) {
        Ok(Line::System(system)) if system.subtype.as_deref() == Some("init") => {
            init(transcript, system)
        }
        Ok(Line::System(system)) if system.subtype.as_deref() == Some("api_retry") => {
            transcript.entries.push(Entry::Raw(retry_line(&system)))
        }
        Ok(Line::Assistant(message)) => assistant(transcript, message),
        Ok(Line::User(message)) => user(transcript, message),
        Ok(Line::Result(result)) => finish(transcript, result),
        // Other system lines (hooks, compaction, …) and new line types are kept as
        // they are, so nothing the agent printed is lost.
        Ok(Line::System(_)) | Err(_) => transcript.entries.push(Entry::Raw(line.trim_end().into())),
    }
}

/// The line types this module reads. Unknown fields are ignored; a field of an
/// unexpected type makes the whole line `Raw`, which is why uncertain fields are
/// `Option`s or `Value`s.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Line {
    System(SystemLine),
    Assistant(MessageLine),
    User(MessageLine),
    Result(ResultLine),
}

/// `api_retry`: the CLI could not reach the model API and tries again.
fn retry_line(system: &SystemLine) -> String {
    let why = match (&system.error, system.error_status) {
        (Some(e), Some(status)) => format!("{e}, HTTP {status}"),
        (Some(e), None) => e.clone(),
        (None, Some(status)) => format!("HTTP {status}"),
        (None, None) => "unknown error".into(),
    };
    let attempt = system
        .attempt
        .map(|a| a.to_string())
        .unwrap_or_else(|| "?".into());
    let max = system
        .max_retries
        .map(|m| format!("/{m}"))
        .unwrap_or_default();
    let delay = system
        .retry_delay_ms
        .map(|ms| format!(" in {:.1} s", ms as f64 / 1000.0))
        .unwrap_or_default();
    format!("↻ the model API request failed ({why}); retry {attempt}{max}{delay}")
}

#[derive(Deserialize)]
struct SystemLine {
    subtype: Option<String>,
    attempt: Option<u64>,
    max_retries: Option<u64>,
    retry_delay_ms: Option<u64>,
    error_status: Option<u64>,
    error: Option<String>,
    session_id: Option<String>,
    model: Option<String>,
    cwd: Option<String>,
    #[serde(default)]
    tools: Vec<Value>,
}

#[derive(Deserialize)]
struct MessageLine {
    message: Message,
    /// Set on the synthetic assistant message Claude Code writes when the API call
    /// failed (`authentication_failed`, `rate_limit`, …); its text is the error.
    error: Option<Value>,
}

#[derive(Deserialize)]
struct Message {
    content: Option<Content>,
    id: Option<String>,
    usage: Option<Value>,
    model: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Blocks(Vec<Block>),
    Text(String),
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    ToolResult {
        tool_use_id: String,
        #[serde(default)]
        content: Value,
        is_error: Option<bool>,
    },
    /// Thinking, images, and block types added later.
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct ResultLine {
    subtype: Option<String>,
    is_error: Option<bool>,
    duration_ms: Option<u64>,
    num_turns: Option<u32>,
    total_cost_usd: Option<f64>,
    session_id: Option<String>,
    result: Option<String>,
    errors: Option<Value>,
    usage: Option<Value>,
}

fn init(transcript: &mut Transcript, system: SystemLine) {
    if let Some(id) = system.session_id.filter(|s| super::is_session_id(s)) {
        transcript.session_id = Some(id);
    }
    transcript.entries.push(Entry::Init {
        model: system.model,
        cwd: system.cwd,
        tools: system.tools.iter().map(value_text).collect(),
    });
}

fn blocks(content: Option<Content>) -> Vec<Block> {
    match content {
        Some(Content::Blocks(blocks)) => blocks,
        Some(Content::Text(text)) => vec![Block::Text { text }],
        None => Vec::new(),
    }
}

fn assistant(transcript: &mut Transcript, line: MessageLine) {
    // Live counts, until the result line gives the CLI's own: each model response once.
    if let Some(id) = &line.message.id {
        if transcript.counted.insert(id.clone()) {
            transcript.turns += 1;
            if let Some(u) = line.message.usage.as_ref().map(token_usage) {
                // The counts are the agent's own numbers: they saturate, never overflow.
                let total = transcript.usage.get_or_insert_with(Default::default);
                total.input_tokens = total.input_tokens.saturating_add(u.input_tokens);
                total.cached_input_tokens = total
                    .cached_input_tokens
                    .saturating_add(u.cached_input_tokens);
                total.output_tokens = total.output_tokens.saturating_add(u.output_tokens);
            }
        }
    }
    if let Some(model) = line.message.model.as_ref().filter(|m| !m.starts_with('<')) {
        transcript.model = Some(model.clone());
    }
    let api_error = line.error.as_ref().map(value_text);
    let mut reported_error = false;
    for block in blocks(line.message.content) {
        match block {
            Block::Text { text } if text.trim().is_empty() => {}
            Block::Text { text } => match &api_error {
                Some(code) => {
                    push_error(transcript, format!("{} ({code})", text.trim()));
                    reported_error = true;
                }
                None => transcript.entries.push(Entry::AssistantText(text)),
            },
            Block::ToolUse { id, name, input } => {
                transcript.entries.push(Entry::ToolCall { id, name, input });
            }
            Block::ToolResult { .. } | Block::Other => {}
        }
    }
    if let (Some(code), false) = (api_error, reported_error) {
        push_error(transcript, code);
    }
}

fn user(transcript: &mut Transcript, line: MessageLine) {
    // User lines echo tool results; plain user text is the prompt handoff sent.
    for block in blocks(line.message.content) {
        if let Block::ToolResult {
            tool_use_id,
            content,
            is_error,
        } = block
        {
            transcript.entries.push(Entry::ToolResult {
                id: tool_use_id,
                content: content_text(&content),
                is_error: is_error.unwrap_or(false),
            });
        }
    }
}

fn finish(transcript: &mut Transcript, result: ResultLine) {
    if let Some(id) = result.session_id.filter(|s| super::is_session_id(s)) {
        transcript.session_id = Some(id);
    }
    transcript.turns = result.num_turns.unwrap_or(transcript.turns);
    transcript.cost_usd = result.total_cost_usd.or(transcript.cost_usd);
    transcript.duration_ms = result.duration_ms.or(transcript.duration_ms);
    if let Some(usage) = result.usage.as_ref().map(token_usage) {
        transcript.usage = Some(usage);
    }
    let subtype = result.subtype.unwrap_or_default();
    // `is_error` alone is not enough: some versions report `error_max_turns` with
    // `is_error: false`.
    transcript.is_error = result.is_error.unwrap_or(false) || subtype.starts_with("error");
    transcript.error = transcript
        .is_error
        .then(|| failure_message(&subtype, result.result, result.errors));
}

/// Says why the session failed: the subtype in words, with the agent's own text.
fn failure_message(subtype: &str, result: Option<String>, errors: Option<Value>) -> String {
    let errors: Vec<String> = match errors {
        Some(Value::Array(items)) => items.iter().map(value_text).collect(),
        _ => Vec::new(),
    };
    let details = if errors.is_empty() {
        result.unwrap_or_default().trim().to_string()
    } else {
        errors.join("; ")
    };
    let summary = match subtype {
        "error_max_turns" => Some("the agent reached its maximum number of turns"),
        "error_max_budget_usd" => Some("the agent reached its cost budget"),
        "error_during_execution" => Some("the agent failed during execution"),
        other if other.starts_with("error") => Some("the agent reported an error"),
        _ => None,
    };
    match (summary, details.is_empty()) {
        (Some(summary), true) => format!("{summary} ({subtype})"),
        (Some(summary), false) => format!("{summary} ({subtype}): {details}"),
        (None, false) => details,
        (None, true) => "the agent reported an error".to_string(),
    }
}

/// A string as it is, anything else as JSON.
fn value_text(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_string)
}

/// Claude's `input_tokens` leaves out what was written to or read from the prompt
/// cache; both are added so the total compares with Codex's.
fn token_usage(usage: &Value) -> TokenUsage {
    let count = |key: &str| usage.get(key).and_then(Value::as_u64).unwrap_or(0);
    let cached = count("cache_read_input_tokens");
    TokenUsage {
        input_tokens: count("input_tokens")
            .saturating_add(count("cache_creation_input_tokens"))
            .saturating_add(cached),
        cached_input_tokens: cached,
        output_tokens: count("output_tokens"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::transcript::fixtures;
    use insta::assert_debug_snapshot;
    use serde_json::json;

    #[test]
    fn a_session_with_writes_commands_and_a_failed_test() {
        assert_debug_snapshot!(parse(fixtures::CLAUDE_SESSION));
    }

    #[test]
    fn a_session_refused_for_its_api_key() {
        assert_debug_snapshot!(parse(fixtures::CLAUDE_AUTH_FAILURE));
    }

    /// Single lines in, the entries they add out.
    #[test]
    fn lines_are_read_liberally() {
        let cases: &[(&str, &str, Vec<Entry>)] = &[
            ("blank line", "   ", vec![]),
            (
                "not JSON",
                "bash: warning: setlocale: LC_ALL: cannot change locale",
                vec![Entry::Raw(
                    "bash: warning: setlocale: LC_ALL: cannot change locale".into(),
                )],
            ),
            (
                "JSON but no object",
                "[1,2]",
                vec![Entry::Raw("[1,2]".into())],
            ),
            (
                "unknown type",
                r#"{"type":"stream_event","event":{}}"#,
                vec![Entry::Raw(r#"{"type":"stream_event","event":{}}"#.into())],
            ),
            (
                "system line that is not init",
                r#"{"type":"system","subtype":"compact_boundary"}"#,
                vec![Entry::Raw(
                    r#"{"type":"system","subtype":"compact_boundary"}"#.into(),
                )],
            ),
            (
                "an API retry is said in words",
                r#"{"type":"system","subtype":"api_retry","attempt":2,"max_retries":10,"retry_delay_ms":1180,"error_status":null,"error":"unknown","session_id":"s"}"#,
                vec![Entry::Raw(
                    "↻ the model API request failed (unknown); retry 2/10 in 1.2 s".into(),
                )],
            ),
            (
                "thinking and empty text are left out",
                r#"{"type":"assistant","message":{"content":[{"type":"thinking","thinking":"hm"},{"type":"text","text":"\n"}]}}"#,
                vec![],
            ),
            (
                "tool use without input",
                r#"{"type":"assistant","message":{"content":[{"type":"tool_use","id":"t1","name":"Glob"}]}}"#,
                vec![Entry::ToolCall {
                    id: "t1".into(),
                    name: "Glob".into(),
                    input: Value::Null,
                }],
            ),
            (
                "tool result as a string, is_error missing",
                r#"{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"t1","content":"ok"}]}}"#,
                vec![Entry::ToolResult {
                    id: "t1".into(),
                    content: "ok".into(),
                    is_error: false,
                }],
            ),
            (
                "tool result as blocks",
                r#"{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"t2","content":[{"type":"text","text":"a"},{"type":"image"}],"is_error":true}]}}"#,
                vec![Entry::ToolResult {
                    id: "t2".into(),
                    content: "a\n[image]".into(),
                    is_error: true,
                }],
            ),
            (
                "user prompt as a string",
                r#"{"type":"user","message":{"role":"user","content":"Add a greeting"}}"#,
                vec![],
            ),
            (
                "API error without text",
                r#"{"type":"assistant","message":{"content":[]},"error":"rate_limit"}"#,
                vec![Entry::Error {
                    message: "rate_limit".into(),
                }],
            ),
        ];
        for (name, line, expected) in cases {
            let mut transcript = Transcript::default();
            parse_line(&mut transcript, line);
            assert_eq!(&transcript.entries, expected, "{name}");
        }
    }

    /// Result lines in, (is_error, error, turns) out.
    #[test]
    fn token_counts_the_agent_reports_add_up_without_overflowing() {
        // The counts are the agent's own numbers; adding them overflowed, a panic in
        // debug builds (found writing the fuzz targets, fuzz/).
        let max = u64::MAX;
        let cases = [
            (
                vec![json!({"type":"result","subtype":"success","usage":
                    {"input_tokens":max,"cache_creation_input_tokens":max,"cache_read_input_tokens":1,"output_tokens":max}})],
                (max, 1, max),
            ),
            (
                vec![
                    json!({"type":"assistant","message":{"id":"m1","content":[],"usage":
                        {"input_tokens":max - 1,"cache_read_input_tokens":1,"output_tokens":max}}}),
                    json!({"type":"assistant","message":{"id":"m2","content":[],"usage":
                        {"input_tokens":2,"cache_read_input_tokens":max,"output_tokens":1}}}),
                ],
                (max, max, max),
            ),
        ];
        for (lines, (input, cached, output)) in cases {
            let mut transcript = Transcript::default();
            for line in &lines {
                parse_line(&mut transcript, &line.to_string());
            }
            assert_eq!(
                transcript.usage,
                Some(TokenUsage {
                    input_tokens: input,
                    cached_input_tokens: cached,
                    output_tokens: output,
                }),
                "{lines:?}"
            );
        }
    }

    #[test]
    fn result_lines_say_how_the_session_ended() {
        let cases = [
            (
                json!({"type":"result","subtype":"success","is_error":false,"num_turns":3,"result":"Done."}),
                (false, None, 3),
            ),
            (
                json!({"type":"result","subtype":"error_max_turns","is_error":false,"num_turns":10}),
                (
                    true,
                    Some("the agent reached its maximum number of turns (error_max_turns)"),
                    10,
                ),
            ),
            (
                json!({"type":"result","subtype":"error_during_execution","is_error":true,"errors":["Tool execution aborted"]}),
                (
                    true,
                    Some("the agent failed during execution (error_during_execution): Tool execution aborted"),
                    0,
                ),
            ),
            (
                json!({"type":"result","subtype":"success","is_error":true,"num_turns":1,"result":"Invalid API key · Please run /login"}),
                (true, Some("Invalid API key · Please run /login"), 1),
            ),
            (
                json!({"type":"result","subtype":"error_unknown_kind","is_error":true}),
                (
                    true,
                    Some("the agent reported an error (error_unknown_kind)"),
                    0,
                ),
            ),
            (
                json!({"type":"result","subtype":"success","is_error":true}),
                (true, Some("the agent reported an error"), 0),
            ),
        ];
        for (line, (is_error, error, turns)) in cases {
            let mut transcript = Transcript::default();
            parse_line(&mut transcript, &line.to_string());
            assert_eq!(
                (
                    transcript.is_error,
                    transcript.error.as_deref(),
                    transcript.turns
                ),
                (is_error, error, turns),
                "{line}"
            );
            assert!(transcript.entries.is_empty(), "{line}");
        }
    }
}
