//! Transcript parsers: whatever an agent prints, parsing and rendering never panic,
//! and what they produce keeps the promises of `handoff::agents::transcript`.

use handoff::agents::transcript::render::{render, Live};
use handoff::agents::transcript::{failure_hint, is_session_id, Entry, Transcript};
use handoff::agents::OutputFormat;

/// Exit codes worth asking [`failure_hint`] about: success, ordinary failures, the
/// ones the hint table knows (not found, killed), and extremes.
const EXIT_CODES: &[i64] = &[0, 1, 2, 125, 126, 127, 137, 143, -1, i64::MAX, i64::MIN];

/// Checks one agent output against `parse` (the whole-log parser) and `format` (whose
/// line parser reads output as it comes).
pub fn check(data: &[u8], parse: fn(&str) -> Transcript, format: OutputFormat) {
    let text = String::from_utf8_lossy(data);
    let transcript = parse(&text);

    // Reading line by line, as `handoff logs -f` does, gives the same transcript.
    let parse_line = format.line_parser();
    let mut by_line = Transcript::default();
    for line in text.lines() {
        parse_line(&mut by_line, line);
    }
    assert_eq!(
        by_line, transcript,
        "line by line differs from the whole log"
    );
    assert_eq!(
        format.parse(&text),
        transcript,
        "OutputFormat::parse differs"
    );

    // A session id reaches file names and command lines: only ever a valid one.
    if let Some(id) = &transcript.session_id {
        assert!(is_session_id(id), "invalid session id {id:?} accepted");
    }
    // A run that failed says why, and one that did not has no reason.
    assert_eq!(
        transcript.is_error,
        transcript.error.is_some(),
        "is_error and error disagree: {:?}",
        transcript.error
    );

    // Rendering never panics and never loses what the agent said.
    let rendered = render(&transcript);
    assert!(rendered.ends_with('\n'));
    assert_said_in_order(&transcript, &rendered, "render");

    // Following the output as it arrives, in chunks that split lines and UTF-8
    // sequences, shows what the agent said too, in order. At most about 64 chunks:
    // `Live` looks for the end of the unfinished line in all of it on every push, so
    // byte-sized chunks of a long line would cost quadratic time.
    let chunk = (1 + data.first().map_or(0, |b| usize::from(*b) % 61)).max(data.len() / 64);
    let mut live = Live::new(parse_line);
    let mut followed = String::new();
    for piece in data.chunks(chunk) {
        followed.push_str(&live.push(piece));
    }
    followed.push_str(&live.finish());
    assert_said_in_order(&transcript, &followed, "Live");

    for &code in EXIT_CODES {
        for exit_code in [Some(code), None] {
            let hint = failure_hint(&transcript, exit_code);
            if !transcript.is_error && matches!(exit_code, None | Some(0)) {
                assert_eq!(hint, None, "a hint for a run that did not fail");
            }
            if let Some(hint) = hint {
                assert!(!hint.trim().is_empty(), "an empty hint");
            }
        }
    }
}

/// Every text the agent wrote for the user appears in `rendered`, trimmed, in the
/// order it was written.
fn assert_said_in_order(transcript: &Transcript, rendered: &str, what: &str) {
    let mut from = 0;
    for entry in &transcript.entries {
        if let Entry::AssistantText(text) = entry {
            let text = text.trim();
            match rendered[from..].find(text) {
                Some(at) => from += at + text.len(),
                None => panic!("{what} lost the agent's text {text:?}"),
            }
        }
    }
}
