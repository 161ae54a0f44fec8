//! Transcripts of agent runs: what the agent said, which tools it called with what
//! result, and how the run ended.
//!
//! The agents report their work as JSON lines on stdout: Claude Code with
//! `--output-format stream-json --verbose`, Codex with `exec --json`. [`claude`] and
//! [`codex`] read those lines into one [`Transcript`] model, [`render`] turns a
//! transcript into text for `handoff logs`, and [`failure_hint`] says in words why a
//! run failed.
//!
//! Everything here is pure: no I/O, no clock, no logging. Parsing never fails: a line
//! that is not JSON, or JSON this module does not understand, is kept as
//! [`Entry::Raw`], so a new agent version can only make the rendering plainer, never
//! lose output or fail a task.

pub mod claude;
pub mod codex;
mod failure;
pub mod render;

#[cfg(test)]
mod fixtures;

#[cfg(test)]
mod session_id_tests {
    #[test]
    fn only_uuids_are_session_ids() {
        for good in [
            "5f0c8a1e-2b7d-4c1a-9e3f-0a1b2c3d4e5f",
            "0199A213-81C0-7800-8AA1-BBAB2A035A53",
        ] {
            assert!(super::is_session_id(good), "{good}");
        }
        for bad in [
            "",
            "s",
            "../../../etc/passwd",
            "5f0c8a1e-2b7d-4c1a-9e3f-0a1b2c3d4e5f/../x",
            "5f0c8a1e-2b7d-4c1a-9e3f-0a1b2c3d4e5g",
            "5f0c8a1e-2b7d-4c1a-9e3f-0a1b2c3d4e5f\n",
            "\u{1b}[31m5f0c8a1e-2b7d-4c1a-9e3f-0a1b2c3d4e5f",
            "--resume=x",
        ] {
            assert!(!super::is_session_id(bad), "{bad:?}");
        }
    }
}

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use failure::failure_hint;

/// Whether `id` is a session id as both CLIs make them: a UUID (Claude Code's
/// `session_id`, Codex's `thread_id`, a UUIDv7), lower- or upper-case hex. Session ids
/// come from the agent's own output, so anything else is refused before it reaches a
/// file name, a command line or a terminal.
pub fn is_session_id(id: &str) -> bool {
    let groups: Vec<&str> = id.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// One agent run, in the order the agent reported it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Transcript {
    /// Claude's `session_id` or Codex's `thread_id`: what `--resume` takes; only ever
    /// a valid one ([`is_session_id`]).
    pub session_id: Option<String>,
    pub entries: Vec<Entry>,
    /// Claude counts model round trips (`num_turns`); Codex counts prompts
    /// (`turn.started`), so one `codex exec` is one turn.
    pub turns: u32,
    pub cost_usd: Option<f64>,
    pub duration_ms: Option<u64>,
    pub usage: Option<TokenUsage>,
    /// The run ended in failure, as the agent itself reported it. The exit code is
    /// the caller's to add.
    pub is_error: bool,
    /// Why the run failed, in the agent's words.
    pub error: Option<String>,
    /// The model that answered, as the CLI reported it.
    pub model: Option<String>,
    /// Model responses already counted in `turns` and `usage` while the run is live
    /// (Claude Code repeats a response's usage on each of its content lines).
    #[serde(skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    pub counted: std::collections::BTreeSet<String>,
}

/// Something the agent said or did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Entry {
    /// Text the agent wrote for the user.
    AssistantText(String),
    /// The agent asked for a tool: Claude's own names (`Write`, `Bash`, …), or for
    /// Codex `shell` (`{"command"}`), `edit` (`{"changes"}`), `web_search`,
    /// `todo_list` and `server/tool` for MCP tools.
    ToolCall {
        id: String,
        name: String,
        input: Value,
    },
    /// What the tool call with the same `id` returned.
    ToolResult {
        id: String,
        content: String,
        is_error: bool,
    },
    /// The agent's session started (Claude's `system`/`init` line).
    Init {
        model: Option<String>,
        cwd: Option<String>,
        tools: Vec<String>,
    },
    /// An error the agent reported; not necessarily fatal (see `Transcript::is_error`).
    Error { message: String },
    /// A line that is not JSON or not understood, kept verbatim.
    Raw(String),
}

/// Tokens used by the run. Input counts include the cached part, as OpenAI reports
/// them; Claude's separate cache counters are added in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    pub input_tokens: u64,
    pub cached_input_tokens: u64,
    pub output_tokens: u64,
}

/// The text of a tool result or MCP result: a plain string, or a list of content
/// blocks of which only text blocks carry words (others are named, like `[image]`).
/// Reads a whole log, one line at a time through `parse_line`.
fn parse_lines(text: &str, parse_line: fn(&mut Transcript, &str)) -> Transcript {
    let mut transcript = Transcript::default();
    for line in text.lines() {
        parse_line(&mut transcript, line);
    }
    transcript
}

fn content_text(content: &Value) -> String {
    match content {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .map(|block| match block.get("type").and_then(Value::as_str) {
                Some("text") => block
                    .get("text")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                Some(other) => format!("[{other}]"),
                None => block.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        other => other.to_string(),
    }
}

/// Keeps an error entry, unless it repeats the one just before: Codex reports a fatal
/// error once as `error` and again in `turn.failed`.
fn push_error(transcript: &mut Transcript, message: String) {
    let repeated = matches!(
        transcript.entries.last(),
        Some(Entry::Error { message: last }) if *last == message
    );
    if !repeated {
        transcript.entries.push(Entry::Error { message });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn transcripts_survive_a_round_trip_through_json() {
        for transcript in [
            claude::parse(fixtures::CLAUDE_SESSION),
            codex::parse(fixtures::CODEX_EXEC),
        ] {
            let json = serde_json::to_string(&transcript).expect("serializes");
            let back: Transcript = serde_json::from_str(&json).expect("deserializes");
            assert_eq!(back, transcript);
        }
    }

    #[test]
    fn content_text_reads_strings_and_blocks() {
        let cases = [
            (json!(null), ""),
            (json!("plain"), "plain"),
            (
                json!([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]),
                "a\nb",
            ),
            (
                json!([{"type": "image", "source": {}}, {"type": "text", "text": "c"}]),
                "[image]\nc",
            ),
            (json!([{"no_type": 1}]), r#"{"no_type":1}"#),
            (json!(42), "42"),
        ];
        for (content, expected) in cases {
            assert_eq!(content_text(&content), expected, "{content}");
        }
    }
}
