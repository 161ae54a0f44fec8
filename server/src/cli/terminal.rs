//! Text for a terminal from sources Handoff does not trust.
//!
//! An agent (or a stranger's repository) controls titles, file names, errors and
//! whole transcripts. Printed raw, an escape sequence in them could clear the screen,
//! hide lines, rewrite the window title or, on some terminals, answer back as
//! keyboard input. [`escape`] makes every control character visible instead.

use std::borrow::Cow;

/// Whether `c` must not reach a terminal as itself: C0 controls (but `\n` and `\t`),
/// DEL, C1 controls, and the bidirectional overrides that reorder what is shown
/// ("Trojan Source").
fn is_unsafe(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
}

/// `text` with every unsafe character written as `\u{…}` (`\e` for ESC, the most
/// common), visible and inert.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\u{1b}' => out.push_str("\\e"),
            '\r' => out.push_str("\\r"),
            c if is_unsafe(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Bytes for a terminal: invalid UTF-8 shown as U+FFFD, then [`escape`]d.
pub fn escape_bytes(bytes: &[u8]) -> String {
    escape(&String::from_utf8_lossy(bytes)).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_become_visible() {
        let cases = [
            (
                "plain text\twith tab\nand newline",
                "plain text\twith tab\nand newline",
            ),
            ("\u{1b}[2J\u{1b}]0;owned\u{7}", "\\e[2J\\e]0;owned\\u{7}"),
            ("over\rwrite", "over\\rwrite"),
            (
                "bell\u{7} del\u{7f} c1\u{9b}",
                "bell\\u{7} del\\u{7f} c1\\u{9b}",
            ),
            ("admin\u{202e}txt.exe", "admin\\u{202e}txt.exe"),
            ("héllo wörld ✓", "héllo wörld ✓"),
        ];
        for (input, want) in cases {
            assert_eq!(escape(input), want, "{input:?}");
        }
        assert_eq!(escape_bytes(b"a\xffb\x1b"), "a\u{fffd}b\\e");
    }
}
