//! Plain-text rendering of a transcript for `handoff logs`.
//!
//! The agent's text comes out whole; each tool call is one `▸` line with its result
//! indented under it and cut to a few lines, since the diff, not the log, is where
//! the work is reviewed.

use std::collections::HashMap;

use serde_json::Value;

use super::{Entry, TokenUsage, Transcript};

/// Result lines shown from the start and from the end of a long result. Compiler
/// errors lead with the cause, test runs end with the verdict.
const HEAD_LINES: usize = 4;
const TAIL_LINES: usize = 2;
/// Longest line of a result or raw output, and longest tool call summary, in chars.
const LINE_CHARS: usize = 160;
const SUMMARY_CHARS: usize = 100;

pub fn render(transcript: &Transcript) -> String {
    let cwd = transcript.entries.iter().find_map(|entry| match entry {
        Entry::Init { cwd, .. } => cwd.as_deref(),
        _ => None,
    });
    let results = results_by_call(&transcript.entries);
    let mut blocks: Vec<String> = Vec::new();
    let mut raw_run = false;
    for entry in &transcript.entries {
        let block = match entry {
            Entry::AssistantText(text) => text.trim().to_string(),
            Entry::ToolCall { id, name, input } => {
                let mut block = format!("▸ {}", headline(name, input, cwd));
                if let Some((content, is_error)) = results.get(id.as_str()) {
                    block.push_str(&result_lines(content, *is_error));
                }
                block
            }
            // Shown under their call; only results without one stand alone.
            Entry::ToolResult { id, .. } if results.contains_key(id.as_str()) => continue,
            Entry::ToolResult {
                id,
                content,
                is_error,
            } => format!("▸ result of {id}{}", result_lines(content, *is_error)),
            Entry::Init { model, cwd, tools } => init_line(model.as_deref(), cwd.as_deref(), tools),
            Entry::Error { message } => format!("✗ {}", indent_rest(message.trim(), "  ")),
            Entry::Raw(line) => {
                // Consecutive raw lines (stderr, say) stay together as one block.
                let line = clip(line, LINE_CHARS);
                match blocks.last_mut() {
                    Some(last) if raw_run => {
                        last.push('\n');
                        last.push_str(&line);
                    }
                    _ => blocks.push(line),
                }
                raw_run = true;
                continue;
            }
        };
        raw_run = false;
        if !block.is_empty() {
            blocks.push(block);
        }
    }
    if let Some(footer) = footer(transcript) {
        blocks.push(footer);
    }
    let mut text = blocks.join("\n\n");
    text.push('\n');
    text
}

/// Renders a transcript as its output arrives (`handoff logs -f`): each entry once,
/// when its line is complete; a tool's result under the call printed before it; the
/// footer at the end. Partial lines wait for the rest.
pub struct Live {
    parse_line: fn(&mut Transcript, &str),
    transcript: Transcript,
    shown: usize,
    partial: Vec<u8>,
}

impl Live {
    pub fn new(parse_line: fn(&mut Transcript, &str)) -> Live {
        Live {
            parse_line,
            transcript: Transcript::default(),
            shown: 0,
            partial: Vec::new(),
        }
    }

    /// The rendering of the entries that `chunk` completes.
    pub fn push(&mut self, chunk: &[u8]) -> String {
        // Only the new bytes can hold the line's end: a long line arriving in small
        // pieces costs its length once, not once per piece.
        let Some(in_chunk) = chunk.iter().rposition(|b| *b == b'\n') else {
            self.partial.extend_from_slice(chunk);
            return String::new();
        };
        let end = self.partial.len() + in_chunk;
        self.partial.extend_from_slice(chunk);
        let complete: Vec<u8> = self.partial.drain(..=end).collect();
        for line in String::from_utf8_lossy(&complete).lines() {
            (self.parse_line)(&mut self.transcript, line);
        }
        self.render_new()
    }

    /// The rest: an unfinished last line, then the footer.
    pub fn finish(&mut self) -> String {
        let rest = std::mem::take(&mut self.partial);
        if !rest.is_empty() {
            (self.parse_line)(&mut self.transcript, &String::from_utf8_lossy(&rest));
        }
        let mut text = self.render_new();
        if let Some(footer) = footer(&self.transcript) {
            text.push_str(&footer);
            text.push('\n');
        }
        text
    }

    fn render_new(&mut self) -> String {
        let cwd = self
            .transcript
            .entries
            .iter()
            .find_map(|entry| match entry {
                Entry::Init { cwd, .. } => cwd.clone(),
                _ => None,
            });
        let mut text = String::new();
        for entry in &self.transcript.entries[self.shown..] {
            let block = match entry {
                Entry::AssistantText(t) => format!("\n{}\n", t.trim()),
                Entry::ToolCall { name, input, .. } => {
                    format!("▸ {}\n", headline(name, input, cwd.as_deref()))
                }
                Entry::ToolResult {
                    content, is_error, ..
                } => match result_lines(content, *is_error) {
                    lines if lines.is_empty() => String::new(),
                    lines => format!("{}\n", lines.trim_start_matches('\n')),
                },
                Entry::Init { model, cwd, tools } => {
                    format!("{}\n", init_line(model.as_deref(), cwd.as_deref(), tools))
                }
                Entry::Error { message } => format!("✗ {}\n", indent_rest(message.trim(), "  ")),
                Entry::Raw(line) => format!("{}\n", clip(line, LINE_CHARS)),
            };
            text.push_str(&block);
        }
        self.shown = self.transcript.entries.len();
        text
    }
}

/// Results keyed by the id of the call they answer, for calls present in `entries`.
fn results_by_call(entries: &[Entry]) -> HashMap<&str, (&str, bool)> {
    let calls: Vec<&str> = entries
        .iter()
        .filter_map(|entry| match entry {
            Entry::ToolCall { id, .. } => Some(id.as_str()),
            _ => None,
        })
        .collect();
    let mut results = HashMap::new();
    for entry in entries {
        if let Entry::ToolResult {
            id,
            content,
            is_error,
        } = entry
        {
            if calls.contains(&id.as_str()) {
                results
                    .entry(id.as_str())
                    .or_insert((content.as_str(), *is_error));
            }
        }
    }
    results
}

fn init_line(model: Option<&str>, cwd: Option<&str>, tools: &[String]) -> String {
    let mut line = "started".to_string();
    if let Some(model) = model {
        line.push_str(&format!(": {model}"));
    }
    if let Some(cwd) = cwd {
        line.push_str(&format!(" in {cwd}"));
    }
    if !tools.is_empty() {
        line.push_str(&format!(" ({} tools)", tools.len()));
    }
    line
}

/// The tool and what it worked on, in a few words: `Write src/lib.rs (12 lines)`,
/// `Bash: cargo test`.
fn headline(name: &str, input: &Value, cwd: Option<&str>) -> String {
    let text = |key: &str| input.get(key).and_then(Value::as_str);
    let path = |key: &str| text(key).map(|path| relative(path, cwd));
    let summary = match name {
        "Bash" | "shell" => {
            return match text("command").map(command_line) {
                Some(command) if !command.is_empty() => {
                    format!("{name}: {}", clip(&command, SUMMARY_CHARS))
                }
                _ => name.to_string(),
            };
        }
        "Write" => path("file_path").map(|path| match text("content") {
            Some(content) => format!("{path} ({})", count(content.lines().count(), "line")),
            None => path,
        }),
        "Edit" | "MultiEdit" | "Read" => path("file_path"),
        "NotebookEdit" => path("notebook_path"),
        "Glob" | "Grep" => text("pattern").map(|pattern| match path("path") {
            Some(dir) => format!("{pattern} in {dir}"),
            None => pattern.to_string(),
        }),
        "WebFetch" => text("url").map(str::to_string),
        "WebSearch" | "web_search" => text("query").map(str::to_string),
        "Task" | "Agent" => text("description").map(str::to_string),
        "TodoWrite" => todo_summary(input.get("todos")),
        "todo_list" => todo_summary(input.get("items")),
        "edit" => changes_summary(input.get("changes"), cwd),
        _ => None,
    };
    let summary = summary.or_else(|| match input {
        Value::Null => None,
        Value::Object(fields) if fields.is_empty() => None,
        other => Some(other.to_string()),
    });
    match summary {
        Some(summary) => format!("{name} {}", clip(&summary, SUMMARY_CHARS)),
        None => name.to_string(),
    }
}

/// The first line of a command, without the shell wrapper Codex runs every command
/// in (`bash -lc '…'`, `/usr/bin/bash -lc …`, `sh -c …`: any path to a shell, then
/// options that end with `-c`).
fn command_line(command: &str) -> String {
    let mut command = command.trim();
    if let Some(script) = shell_script(command) {
        command = script;
        for quote in ['\'', '"'] {
            if let Some(inner) = command
                .strip_prefix(quote)
                .and_then(|rest| rest.strip_suffix(quote))
            {
                command = inner;
            }
        }
    }
    let mut lines = command.lines();
    let first = lines.next().unwrap_or_default().to_string();
    match lines.next() {
        Some(_) => format!("{first} …"),
        None => first,
    }
}

/// The script of `SHELL [OPTIONS] -c SCRIPT`, when `command` is that.
fn shell_script(command: &str) -> Option<&str> {
    let (program, mut rest) = command.split_once(' ')?;
    let name = program.rsplit('/').next()?;
    if !matches!(name, "bash" | "sh" | "zsh" | "dash" | "ash" | "ksh") {
        return None;
    }
    loop {
        let (option, after) = rest.trim_start().split_once(' ')?;
        if !option.starts_with('-') || option.starts_with("--") {
            return None;
        }
        rest = after;
        if option.contains('c') {
            return Some(rest.trim_start());
        }
    }
}

/// `2/3 done` for Claude's `todos` (`status`) and Codex's `items` (`completed`).
fn todo_summary(items: Option<&Value>) -> Option<String> {
    let items = items?.as_array()?;
    let done = items
        .iter()
        .filter(|item| {
            item.get("completed").and_then(Value::as_bool) == Some(true)
                || item.get("status").and_then(Value::as_str) == Some("completed")
        })
        .count();
    Some(format!("{done}/{} done", items.len()))
}

/// `update src/lib.rs, add src/greet.rs` for Codex's file changes.
fn changes_summary(changes: Option<&Value>, cwd: Option<&str>) -> Option<String> {
    let changes = changes?.as_array()?;
    let parts: Vec<String> = changes
        .iter()
        .filter_map(|change| {
            let path = change.get("path").and_then(Value::as_str)?;
            let kind = change
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("change");
            Some(format!("{kind} {}", relative(path, cwd)))
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// `path` relative to the agent's working directory, which is the repository root.
fn relative(path: &str, cwd: Option<&str>) -> String {
    cwd.and_then(|cwd| path.strip_prefix(cwd.trim_end_matches('/')))
        .and_then(|rest| rest.strip_prefix('/'))
        .filter(|rest| !rest.is_empty())
        .unwrap_or(path)
        .to_string()
}

/// A result under its call, four spaces in; an error is marked with `✗`.
fn result_lines(content: &str, is_error: bool) -> String {
    // Blank lines carry nothing in a preview of a few lines.
    let lines: Vec<&str> = content
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    if lines.is_empty() {
        return match is_error {
            true => "\n  ✗ (no output)".to_string(),
            false => String::new(),
        };
    }
    let mut shown: Vec<String> = Vec::new();
    if lines.len() <= HEAD_LINES + TAIL_LINES + 1 {
        shown.extend(lines.iter().map(|line| clip(line, LINE_CHARS)));
    } else {
        let omitted = lines.len() - HEAD_LINES - TAIL_LINES;
        shown.extend(
            lines[..HEAD_LINES]
                .iter()
                .map(|line| clip(line, LINE_CHARS)),
        );
        shown.push(format!("… {}", count(omitted, "more line")));
        shown.extend(
            lines[lines.len() - TAIL_LINES..]
                .iter()
                .map(|line| clip(line, LINE_CHARS)),
        );
    }
    let mut text = String::new();
    for (index, line) in shown.iter().enumerate() {
        let line = match (index, is_error) {
            (0, true) => format!("  ✗ {}", line.trim_start()),
            _ => format!("    {line}"),
        };
        text.push('\n');
        text.push_str(line.trim_end());
    }
    text
}

fn footer(transcript: &Transcript) -> Option<String> {
    let mut facts = Vec::new();
    if transcript.turns > 0 {
        facts.push(count(transcript.turns as usize, "turn"));
    }
    // A run refused before the first request costs nothing and used no tokens;
    // zeros would only add noise.
    if let Some(cost) = transcript.cost_usd.filter(|cost| *cost > 0.0) {
        facts.push(format!("${cost:.4}"));
    }
    if let Some(ms) = transcript.duration_ms {
        facts.push(duration(ms));
    }
    if let Some(usage) = transcript
        .usage
        .filter(|usage| *usage != TokenUsage::default())
    {
        facts.push(tokens(usage));
    }
    if let Some(id) = &transcript.session_id {
        facts.push(format!("session {id}"));
    }
    let mut lines = Vec::new();
    if transcript.is_error {
        lines.push(match &transcript.error {
            Some(error) => format!("✗ failed: {}", indent_rest(error.trim(), "  ")),
            None => "✗ failed".to_string(),
        });
    }
    if !facts.is_empty() {
        lines.push(facts.join(" · "));
    }
    (!lines.is_empty()).then(|| format!("──\n{}", lines.join("\n")))
}

fn duration(ms: u64) -> String {
    match ms {
        0..=999 => format!("{ms} ms"),
        1_000..=59_999 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{} min {} s", ms / 60_000, ms % 60_000 / 1000),
    }
}

fn tokens(usage: TokenUsage) -> String {
    let mut text = format!("{} tokens in", usage.input_tokens);
    if usage.cached_input_tokens > 0 {
        text.push_str(&format!(" ({} cached)", usage.cached_input_tokens));
    }
    text.push_str(&format!(", {} out", usage.output_tokens));
    text
}

fn count(n: usize, noun: &str) -> String {
    match n {
        1 => format!("1 {noun}"),
        n => format!("{n} {noun}s"),
    }
}

/// At most `max` chars of `line`, with `…` when cut.
fn clip(line: &str, max: usize) -> String {
    match line.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line.to_string(),
    }
}

fn indent_rest(text: &str, indent: &str) -> String {
    text.lines()
        .collect::<Vec<_>>()
        .join(&format!("\n{indent}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::transcript::{claude, codex, fixtures};
    use insta::assert_snapshot;
    use serde_json::json;

    #[test]
    fn a_claude_session() {
        assert_snapshot!(render(&claude::parse(fixtures::CLAUDE_SESSION)));
    }

    #[test]
    fn a_claude_session_refused_for_its_api_key() {
        assert_snapshot!(render(&claude::parse(fixtures::CLAUDE_AUTH_FAILURE)));
    }

    #[test]
    fn a_codex_exec() {
        assert_snapshot!(render(&codex::parse(fixtures::CODEX_EXEC)));
    }

    #[test]
    fn a_failed_codex_exec() {
        assert_snapshot!(render(&codex::parse(fixtures::CODEX_FAILED)));
    }

    #[test]
    fn live_rendering_shows_each_entry_once_as_its_line_completes() {
        let mut live = Live::new(claude::parse_line);
        let mut out = String::new();
        // Fed in awkward pieces: a line split in two, several lines at once.
        let bytes = fixtures::CLAUDE_SESSION.as_bytes();
        for piece in bytes.chunks(37) {
            out.push_str(&live.push(piece));
        }
        out.push_str(&live.finish());
        let whole = render(&claude::parse(fixtures::CLAUDE_SESSION));
        // Every tool call and the footer, in the order of the whole rendering.
        let calls = |text: &str| -> Vec<String> {
            text.lines()
                .filter(|l| l.starts_with("▸ ") || l.starts_with("──") || l.contains(" · "))
                .map(String::from)
                .collect()
        };
        assert_eq!(calls(&out), calls(&whole), "live:\n{out}\nwhole:\n{whole}");
        assert!(!calls(&out).is_empty());
        // Nothing is shown twice, and a partial line waits.
        let mut live = Live::new(claude::parse_line);
        assert_eq!(
            live.push(b"{\"type\":\"assistant\",\"message\":{\"content\":[{\"type\":\"text\""),
            ""
        );
        assert_eq!(live.push(b",\"text\":\"Hello\"}]}}\n"), "\nHello\n");
        assert_eq!(live.push(b"not json\n"), "not json\n");
        assert_eq!(live.finish(), "");
    }

    #[test]
    fn an_empty_transcript() {
        assert_eq!(render(&Transcript::default()), "\n");
    }

    /// Tool name and input in, the `▸` line out.
    #[test]
    fn headlines_summarise_the_input() {
        let cwd = Some("/workspace");
        let cases = [
            (
                "Write",
                json!({"file_path": "/workspace/src/a.rs", "content": "a\nb\n"}),
                "Write src/a.rs (2 lines)",
            ),
            (
                "Read",
                json!({"file_path": "/etc/hosts"}),
                "Read /etc/hosts",
            ),
            (
                "Grep",
                json!({"pattern": "fn main", "path": "/workspace/src"}),
                "Grep fn main in src",
            ),
            (
                "Bash",
                json!({"command": "cargo build &&\ncargo test", "description": "Build"}),
                "Bash: cargo build && …",
            ),
            (
                "shell",
                json!({"command": "bash -lc 'rg -n \"greet\" src'"}),
                "shell: rg -n \"greet\" src",
            ),
            (
                "shell",
                json!({"command": "/usr/bin/bash -lc 'cargo test'"}),
                "shell: cargo test",
            ),
            (
                "shell",
                json!({"command": "/usr/bin/zsh -c ls"}),
                "shell: ls",
            ),
            (
                "shell",
                json!({"command": "/bin/bash -e -c 'make'"}),
                "shell: make",
            ),
            (
                "shell",
                json!({"command": "bashful -c x"}),
                "shell: bashful -c x",
            ),
            (
                "TodoWrite",
                json!({"todos": [{"content": "a", "status": "completed"}, {"content": "b", "status": "pending"}]}),
                "TodoWrite 1/2 done",
            ),
            (
                "edit",
                json!({"changes": [{"path": "/workspace/a.rs", "kind": "add"}, {"path": "b.rs", "kind": "delete"}]}),
                "edit add a.rs, delete b.rs",
            ),
            ("docs/search", json!({"q": "x"}), r#"docs/search {"q":"x"}"#),
            ("ExitPlanMode", json!({}), "ExitPlanMode"),
            ("Bash", json!({}), "Bash"),
        ];
        for (name, input, expected) in cases {
            assert_eq!(headline(name, &input, cwd), expected, "{name} {input}");
        }
        let long = json!({ "url": format!("https://example.com/{}", "a".repeat(200)) });
        assert_eq!(
            headline("WebFetch", &long, cwd),
            format!("WebFetch https://example.com/{}…", "a".repeat(80))
        );
    }

    #[test]
    fn long_results_keep_their_head_and_tail() {
        let content: Vec<String> = (1..=20).map(|n| format!("line {n}")).collect();
        let expected = [
            "",
            "  ✗ line 1",
            "    line 2",
            "    line 3",
            "    line 4",
            "    … 14 more lines",
            "    line 19",
            "    line 20",
        ];
        assert_eq!(result_lines(&content.join("\n"), true), expected.join("\n"));
    }

    #[test]
    fn durations_read_naturally() {
        let cases = [(850, "850 ms"), (18_342, "18.3 s"), (125_000, "2 min 5 s")];
        for (ms, expected) in cases {
            assert_eq!(duration(ms), expected);
        }
    }
}
