//! Every conversion between protocol types and Handoff's own, in one place
//! (rust-analyzer's `to_proto`/`from_proto`): positions (with the encoding negotiated
//! at `initialize`, on `diff::LineIndex`), what a client's capabilities mean for us,
//! and every protocol value the server sends — diagnostics, workspace edits, code
//! actions (literals or plain commands, per the client), lenses, progress, errors.

/// From the client's messages to Handoff's values.
pub mod from_proto {
    use std::path::PathBuf;

    use serde_json::{json, Value};
    use tower_lsp_server::ls_types::{self as lsp, Uri};

    use crate::diff::{LineIndex, Position, PositionEncoding};
    use crate::lsp::editor::ClientFeatures;
    use crate::lsp::error::LspError;
    use crate::lsp::ext::{ExtCommand, InitOptions};

    /// UTF-8 when the client offers it (no conversion needed), else UTF-16, which
    /// every client must support.
    pub fn negotiate_encoding(params: &lsp::InitializeParams) -> PositionEncoding {
        let offered = params
            .capabilities
            .general
            .as_ref()
            .and_then(|g| g.position_encodings.as_ref());
        match offered {
            Some(list) if list.iter().any(|e| e.as_str() == "utf-8") => PositionEncoding::Utf8,
            _ => PositionEncoding::Utf16,
        }
    }

    /// What the client can do, from its capabilities and `initializationOptions`.
    pub fn client_features(params: &lsp::InitializeParams) -> ClientFeatures {
        let caps = &params.capabilities;
        let options: InitOptions = params
            .initialization_options
            .clone()
            .and_then(|o| serde_json::from_value(o).ok())
            .unwrap_or_default();
        let text = caps.text_document.as_ref();
        let workspace = caps.workspace.as_ref();
        let window = caps.window.as_ref();
        let code_action = text.and_then(|t| t.code_action.as_ref());
        ClientFeatures {
            code_action_literals: code_action
                .is_some_and(|c| c.code_action_literal_support.is_some()),
            code_action_resolve: code_action
                .and_then(|c| c.resolve_support.as_ref())
                .is_some_and(|r| r.properties.iter().any(|p| p == "command" || p == "edit")),
            apply_edit: workspace.and_then(|w| w.apply_edit).unwrap_or(false),
            work_done_progress: window.and_then(|w| w.work_done_progress).unwrap_or(false),
            document_changes: workspace
                .and_then(|w| w.workspace_edit.as_ref())
                .and_then(|e| e.document_changes)
                .unwrap_or(false),
            code_lens_refresh: workspace
                .and_then(|w| w.code_lens.as_ref())
                .and_then(|c| c.refresh_support)
                .unwrap_or(false),
            show_document: window
                .and_then(|w| w.show_document.as_ref())
                .is_some_and(|s| s.support),
            task_messages: options.task_messages,
            error_messages: options.error_messages,
            handoff_notifications: options.handoff_notifications,
            comment_input: options.comment_input,
        }
    }

    /// The workspace folders (and the deprecated root URI) that are local folders.
    pub fn roots(params: &lsp::InitializeParams) -> Vec<PathBuf> {
        let mut roots: Vec<PathBuf> = params
            .workspace_folders
            .iter()
            .flatten()
            .filter_map(|f| path_from_uri(&f.uri))
            .collect();
        #[allow(deprecated)]
        if let Some(root) = params.root_uri.as_ref().and_then(path_from_uri) {
            roots.push(root);
        }
        roots
    }

    /// The one argument object of a command. No argument, `null` or `[]` (what an
    /// empty Lua table encodes to) mean "no options".
    pub fn command_args<C: ExtCommand>(
        params: &lsp::ExecuteCommandParams,
    ) -> Result<C::Args, LspError> {
        let value = params.arguments.first().cloned().unwrap_or(Value::Null);
        let empty = value.is_null() || value.as_array().is_some_and(|a| a.is_empty());
        let value = if empty { json!({}) } else { value };
        serde_json::from_value(value).map_err(|e| {
            LspError::invalid(format!(
                "bad arguments for {}: {e} (see docs/protocol.md)",
                C::NAME
            ))
        })
    }

    pub fn offset(index: &LineIndex, pos: lsp::Position, enc: PositionEncoding) -> usize {
        index.offset(Position::new(pos.line, pos.character), enc)
    }

    /// `text` with a `didChange`'s content changes applied, in order: the positions of
    /// each refer to the text after the previous one.
    pub fn apply_changes(
        mut text: String,
        changes: Vec<lsp::TextDocumentContentChangeEvent>,
        enc: PositionEncoding,
    ) -> String {
        for change in changes {
            match change.range {
                Some(range) => {
                    let index = LineIndex::new(&text);
                    let start = offset(&index, range.start, enc);
                    let end = offset(&index, range.end, enc).max(start);
                    text.replace_range(start..end, &change.text);
                }
                None => text = change.text,
            }
        }
        text
    }

    /// Whether bytes `start..end` of `text` are a selection the user made, rather than
    /// what clients send for a plain cursor: an empty range, one character (Vim's ALE),
    /// or the word under the cursor (Eglot, others). At least one whole line, or several
    /// characters that are not just one word, count.
    pub fn explicit_selection(text: &str, start: usize, end: usize) -> bool {
        let Some(selected) = text.get(start..end) else {
            return false;
        };
        let at_line_start = start == 0 || text[..start].ends_with(['\n', '\r']);
        let at_line_end = end == text.len()
            || selected.ends_with(['\n', '\r'])
            || text[end..].starts_with(['\n', '\r']);
        if at_line_start && at_line_end && !selected.trim().is_empty() {
            return true;
        }
        let word_char = |c: char| c.is_alphanumeric() || c == '_' || c == '-';
        let is_word = selected.chars().all(word_char)
            && !text[..start].ends_with(word_char)
            && !text[end..].starts_with(word_char);
        selected.chars().count() >= 2 && !is_word
    }

    /// A `file:` URI's path; `None` for other schemes (unsaved buffers, remote files).
    pub fn path_from_uri(uri: &Uri) -> Option<PathBuf> {
        let url = url::Url::parse(uri.as_str()).ok()?;
        if url.scheme() != "file" {
            return None;
        }
        url.to_file_path().ok()
    }
}

/// From Handoff's values to what the server sends.
pub mod to_proto {
    use std::collections::HashMap;
    use std::path::Path;
    use std::str::FromStr;

    use serde_json::{json, Value};
    use tower_lsp_server::jsonrpc;
    use tower_lsp_server::ls_types::{self as lsp, Uri};

    use crate::diff::{Anchor, Edit, LineIndex, PositionEncoding};
    use crate::engine::task::{Task, TaskId};
    use crate::lsp::editor::ClientFeatures;
    use crate::lsp::error::LspError;
    use crate::lsp::ext::{self, ActionData, ErrorData, HunkData};
    use crate::lsp::session::PlacedHunk;
    use crate::lsp::wording;

    pub fn encoding(e: PositionEncoding) -> lsp::PositionEncodingKind {
        match e {
            PositionEncoding::Utf8 => lsp::PositionEncodingKind::UTF8,
            PositionEncoding::Utf16 => lsp::PositionEncodingKind::UTF16,
            PositionEncoding::Utf32 => lsp::PositionEncodingKind::UTF32,
        }
    }

    pub fn position(index: &LineIndex, offset: usize, enc: PositionEncoding) -> lsp::Position {
        let p = index.position(offset, enc);
        lsp::Position::new(p.line, p.character)
    }

    pub fn range(index: &LineIndex, start: usize, end: usize, enc: PositionEncoding) -> lsp::Range {
        lsp::Range::new(position(index, start, enc), position(index, end, enc))
    }

    /// The range covering whole lines `[start_line, end_line)`; an empty line range is
    /// a zero-width range at the start of `start_line`.
    pub fn line_range(
        index: &LineIndex,
        start_line: usize,
        end_line: usize,
        enc: PositionEncoding,
    ) -> lsp::Range {
        let end = end_line.max(start_line);
        let start_pos = lsp::Position::new(start_line as u32, 0);
        if end == start_line {
            return lsp::Range::new(start_pos, start_pos);
        }
        // End at the end of the last line's text rather than the next line's start,
        // so the range does not spill onto a line the hunk does not touch.
        let last = end - 1;
        let end_pos = match index.line_range(last) {
            Some(r) => position(index, r.end, enc),
            None => lsp::Position::new(last as u32, 0),
        };
        lsp::Range::new(start_pos, end_pos)
    }

    pub fn uri_from_path(path: &Path) -> Option<Uri> {
        let url = url::Url::from_file_path(path).ok()?;
        Uri::from_str(url.as_str()).ok()
    }

    /// What the server can do, announced at `initialize`.
    pub fn initialize_result(enc: PositionEncoding) -> lsp::InitializeResult {
        lsp::InitializeResult {
            server_info: Some(lsp::ServerInfo {
                name: "handoff".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            }),
            capabilities: lsp::ServerCapabilities {
                position_encoding: Some(encoding(enc)),
                text_document_sync: Some(lsp::TextDocumentSyncCapability::Options(
                    lsp::TextDocumentSyncOptions {
                        open_close: Some(true),
                        change: Some(lsp::TextDocumentSyncKind::INCREMENTAL),
                        ..Default::default()
                    },
                )),
                code_action_provider: Some(lsp::CodeActionProviderCapability::Options(
                    lsp::CodeActionOptions {
                        code_action_kinds: Some(vec![
                            lsp::CodeActionKind::QUICKFIX,
                            lsp::CodeActionKind::REFACTOR,
                        ]),
                        resolve_provider: Some(true),
                        ..Default::default()
                    },
                )),
                code_lens_provider: Some(lsp::CodeLensOptions {
                    resolve_provider: Some(false),
                }),
                execute_command_provider: Some(lsp::ExecuteCommandOptions {
                    commands: ext::ALL_COMMANDS.iter().map(|c| c.to_string()).collect(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            offset_encoding: None,
        }
    }

    /// A pending hunk as a Hint diagnostic: where it sits now, a message for people,
    /// and the whole change in `data` for clients that draw it.
    pub fn hunk_diagnostic(
        index: &LineIndex,
        enc: PositionEncoding,
        placed: &PlacedHunk,
        title: &str,
    ) -> lsp::Diagnostic {
        let (start, end) = placed.lines();
        let conflict = match &placed.anchor {
            Anchor::Conflict { reason } => Some(reason),
            Anchor::Applies { .. } => None,
        };
        lsp::Diagnostic {
            range: line_range(index, start, end, enc),
            severity: Some(lsp::DiagnosticSeverity::HINT),
            code: Some(lsp::NumberOrString::String(format!(
                "handoff#{}",
                placed.task
            ))),
            source: Some("handoff".into()),
            message: wording::hunk_message(placed.task, title, &placed.hunk, conflict),
            data: Some(json!(HunkData {
                task: placed.task.0,
                hunk: placed.hunk.index,
                conflict: conflict.is_some(),
                old_lines: placed.hunk.base_lines.clone(),
                new_lines: placed.hunk.new_lines.clone(),
                sensitive: placed.sensitive,
                comments: placed.comments.clone(),
            })),
            ..Default::default()
        }
    }

    /// A pending review comment, on the lines of the hunk it is about.
    pub fn comment_diagnostic(
        index: &LineIndex,
        enc: PositionEncoding,
        placed: &PlacedHunk,
        text: &str,
    ) -> lsp::Diagnostic {
        let (start, end) = placed.lines();
        lsp::Diagnostic {
            range: line_range(index, start, end, enc),
            severity: Some(lsp::DiagnosticSeverity::HINT),
            code: Some(lsp::NumberOrString::String(format!(
                "handoff#{}-comment",
                placed.task
            ))),
            source: Some("handoff".into()),
            message: wording::comment_message(placed.task, text),
            data: Some(
                json!({ "task": placed.task.0, "hunk": placed.hunk.index, "comment": text }),
            ),
            ..Default::default()
        }
    }

    /// Byte edits of one document as a workspace edit: a versioned `TextDocumentEdit`
    /// when the client supports `documentChanges`, plain `changes` otherwise.
    pub fn workspace_edit(
        uri: &Uri,
        version: i32,
        edits: &[Edit],
        index: &LineIndex,
        enc: PositionEncoding,
        features: ClientFeatures,
    ) -> lsp::WorkspaceEdit {
        let edits: Vec<lsp::TextEdit> = edits
            .iter()
            .map(|e| lsp::TextEdit {
                range: range(index, e.start, e.end, enc),
                new_text: e.new_text.clone(),
            })
            .collect();
        if features.document_changes {
            lsp::WorkspaceEdit {
                document_changes: Some(lsp::DocumentChanges::Edits(vec![lsp::TextDocumentEdit {
                    text_document: lsp::OptionalVersionedTextDocumentIdentifier {
                        uri: uri.clone(),
                        version: Some(version),
                    },
                    edits: edits.into_iter().map(lsp::OneOf::Left).collect(),
                }])),
                ..Default::default()
            }
        } else {
            lsp::WorkspaceEdit {
                changes: Some(HashMap::from([(uri.clone(), edits)])),
                ..Default::default()
            }
        }
    }

    pub fn command<C: ext::ExtCommand>(title: &str, args: &C::Args) -> lsp::Command {
        lsp::Command {
            title: title.into(),
            command: C::NAME.into(),
            arguments: Some(vec![json!(args)]),
        }
    }

    /// A code action as the handlers describe it.
    #[derive(Debug, Clone)]
    pub struct Offer {
        pub title: String,
        pub kind: lsp::CodeActionKind,
        pub preferred: bool,
        /// What running the action does.
        pub command: Option<lsp::Command>,
        /// The edit the client applies itself (for clients without `applyEdit`).
        pub edit: Option<lsp::WorkspaceEdit>,
        /// Filled in by `codeAction/resolve` (the prompt of a delegated TODO).
        pub unresolved: Option<ActionData>,
    }

    impl Offer {
        pub fn new(
            title: impl Into<String>,
            kind: lsp::CodeActionKind,
            command: lsp::Command,
        ) -> Offer {
            Offer {
                title: title.into(),
                kind,
                preferred: false,
                command: Some(command),
                edit: None,
                unresolved: None,
            }
        }
    }

    /// A code action literal for clients that support them; a plain `Command` for the
    /// others, titled like the action (some clients show only the command's title),
    /// or nothing if the offer needs a literal (an edit, a resolve).
    pub fn code_action(offer: Offer, features: ClientFeatures) -> Option<lsp::CodeActionOrCommand> {
        if features.code_action_literals {
            return Some(lsp::CodeActionOrCommand::CodeAction(lsp::CodeAction {
                title: offer.title,
                kind: Some(offer.kind),
                is_preferred: offer.preferred.then_some(true),
                command: offer.command,
                edit: offer.edit,
                data: offer.unresolved.map(|d| json!(d)),
                ..Default::default()
            }));
        }
        let command = offer.command?;
        Some(lsp::CodeActionOrCommand::Command(lsp::Command {
            title: offer.title,
            ..command
        }))
    }

    pub fn code_lens(line: usize, command: lsp::Command) -> lsp::CodeLens {
        let at = lsp::Position::new(line as u32, 0);
        lsp::CodeLens {
            range: lsp::Range::new(at, at),
            command: Some(command),
            data: None,
        }
    }

    /// The token of a task's progress: one per task and turn.
    pub fn progress_token(container: &str, task: TaskId) -> lsp::ProgressToken {
        lsp::NumberOrString::String(format!("handoff/{container}/{task}"))
    }

    pub fn progress_begin(task: &Task) -> lsp::WorkDoneProgress {
        lsp::WorkDoneProgress::Begin(lsp::WorkDoneProgressBegin {
            title: wording::progress_title(task),
            message: Some(wording::status(task)),
            cancellable: Some(false),
            percentage: None,
        })
    }

    pub fn progress_report(task: &Task) -> lsp::WorkDoneProgress {
        lsp::WorkDoneProgress::Report(lsp::WorkDoneProgressReport {
            message: Some(wording::status(task)),
            ..Default::default()
        })
    }

    pub fn progress_end(task: &Task) -> lsp::WorkDoneProgress {
        lsp::WorkDoneProgress::End(lsp::WorkDoneProgressEnd {
            message: Some(wording::status(task)),
        })
    }

    pub fn progress(
        token: lsp::ProgressToken,
        value: lsp::WorkDoneProgress,
    ) -> lsp::ProgressParams {
        lsp::ProgressParams {
            token,
            value: lsp::ProgressParamsValue::WorkDone(value),
        }
    }

    pub fn message_actions(titles: &[&str]) -> Vec<lsp::MessageActionItem> {
        titles
            .iter()
            .map(|t| lsp::MessageActionItem {
                title: t.to_string(),
                properties: HashMap::new(),
            })
            .collect()
    }

    /// The actions of the trust question: "Trust", carrying what the question is
    /// about, and "Not now".
    pub fn trust_question_actions(question: &ext::TrustQuestion) -> Vec<lsp::MessageActionItem> {
        let mut actions = message_actions(&["Trust", "Not now"]);
        if let Ok(Value::Object(fields)) = serde_json::to_value(question) {
            actions[0].properties = fields
                .into_iter()
                .map(|(k, v)| (k, lsp::MessageActionItemProperty::Object(v)))
                .collect();
        }
        actions
    }

    pub fn show_document(uri: Uri) -> lsp::ShowDocumentParams {
        lsp::ShowDocumentParams {
            uri,
            external: Some(false),
            take_focus: Some(true),
            selection: None,
        }
    }

    /// A failed request as the JSON-RPC error the client gets; `shown` says whether the
    /// user has seen the message already.
    pub fn error(e: &LspError, shown: bool) -> jsonrpc::Error {
        jsonrpc::Error {
            code: jsonrpc::ErrorCode::ServerError(e.kind.code()),
            message: e.message.clone().into(),
            data: Some(json!(ErrorData {
                kind: e.kind,
                shown
            })),
        }
    }

    /// Any value as the result of a command.
    pub fn result<T: serde::Serialize>(value: T) -> Option<Value> {
        Some(json!(value))
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::str::FromStr;

    use super::from_proto::*;
    use super::to_proto::*;
    use crate::diff::{LineIndex, PositionEncoding};
    use tower_lsp_server::ls_types::Uri;

    /// (text with `$0` at the position, line, UTF-16 character, UTF-8 character)
    #[test]
    fn positions_round_trip_in_both_encodings() {
        let cases = [
            ("abc$0def", 0, 3, 3),
            ("a\r\nb$0c\r\n", 1, 1, 1),
            ("\tx$0", 0, 2, 2),
            ("😀$0x", 0, 2, 4),
            ("日本$0語", 0, 2, 6),
            ("l1\r\n😀日$0\r\nz", 1, 3, 7),
        ];
        for (fixture, line, utf16, utf8) in cases {
            let at = fixture.find("$0").unwrap();
            let text = fixture.replace("$0", "");
            let index = LineIndex::new(&text);
            for (enc, ch) in [
                (PositionEncoding::Utf16, utf16),
                (PositionEncoding::Utf8, utf8),
            ] {
                let p = position(&index, at, enc);
                assert_eq!((p.line, p.character), (line, ch), "{fixture:?} {enc:?}");
                assert_eq!(offset(&index, p, enc), at, "{fixture:?} {enc:?} back");
            }
        }
    }

    #[test]
    fn line_ranges_end_on_their_last_line() {
        let index = LineIndex::new("a\r\nbb\r\nccc\r\n");
        let r = line_range(&index, 1, 3, PositionEncoding::Utf16);
        assert_eq!(
            (r.start.line, r.start.character, r.end.line, r.end.character),
            (1, 0, 2, 3)
        );
        let empty = line_range(&index, 2, 2, PositionEncoding::Utf16);
        assert_eq!(empty.start, empty.end);
        // The end is in the negotiated encoding, not in bytes.
        let index = LineIndex::new("x\n日本😀\n");
        let utf16 = line_range(&index, 1, 2, PositionEncoding::Utf16);
        assert_eq!((utf16.end.line, utf16.end.character), (1, 4));
        let utf8 = line_range(&index, 1, 2, PositionEncoding::Utf8);
        assert_eq!((utf8.end.line, utf8.end.character), (1, 10));
    }

    /// (text with `$0` at both ends of the range, explicit?)
    #[test]
    fn selections_and_cursors() {
        let cases = [
            ("    return $0$0\"hello\" + name\n", false),
            ("    return $0\"$0hello\" + name\n", false),
            ("    $0return$0 \"hello\" + name\n", false),
            ("    return \"hello\" + $0name$0\n", false),
            ("    return \"hello\" + na$0me$0\n", true),
            ("    $0return \"hello\"$0 + name\n", true),
            ("    return$0 \"$0hello\" + name\n", true),
            ("a\n$0    return \"hello\" + name\n$0b\n", true),
            ("a\n$0}$0\nb\n", true),
            ("a\n$0}\n$0b\n", true),
            ("a\nb$0\n$0\n", false),
            ("a\n$0\n$0b\n", false),
            ("$0def f():\n    pass$0", true),
            ("x = $0é$0\n", false),
            ("x = $0日本$0 + 1\n", false),
            ("x = $0日本 $0+ 1\n", true),
        ];
        for (fixture, expected) in cases {
            let start = fixture.find("$0").unwrap();
            let text = fixture.replacen("$0", "", 1);
            let end = text.find("$0").unwrap();
            let text = text.replacen("$0", "", 1);
            assert_eq!(
                explicit_selection(&text, start, end),
                expected,
                "{fixture:?}"
            );
        }
    }

    #[test]
    fn uris_and_paths() {
        let uri = Uri::from_str("file:///tmp/a%20b/c.rs").unwrap();
        assert_eq!(path_from_uri(&uri), Some(PathBuf::from("/tmp/a b/c.rs")));
        let untitled = Uri::from_str("untitled:Untitled-1").unwrap();
        assert_eq!(path_from_uri(&untitled), None);
        let back = uri_from_path(Path::new("/tmp/a b/c.rs")).unwrap();
        assert_eq!(back.as_str(), "file:///tmp/a%20b/c.rs");
    }
}
