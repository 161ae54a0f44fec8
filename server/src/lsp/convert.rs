//! Every conversion between protocol types and Handoff's own, in one place
//! (rust-analyzer's `to_proto`/`from_proto`). Positions are converted only here, with
//! the encoding negotiated at `initialize`.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use tower_lsp_server::ls_types::{self as lsp, Uri};

use crate::diff::{LineIndex, Position, PositionEncoding};

pub fn encoding_from_proto(e: &lsp::PositionEncodingKind) -> Option<PositionEncoding> {
    match e.as_str() {
        "utf-8" => Some(PositionEncoding::Utf8),
        "utf-16" => Some(PositionEncoding::Utf16),
        "utf-32" => Some(PositionEncoding::Utf32),
        _ => None,
    }
}

pub fn encoding_to_proto(e: PositionEncoding) -> lsp::PositionEncodingKind {
    match e {
        PositionEncoding::Utf8 => lsp::PositionEncodingKind::UTF8,
        PositionEncoding::Utf16 => lsp::PositionEncodingKind::UTF16,
        PositionEncoding::Utf32 => lsp::PositionEncodingKind::UTF32,
    }
}

/// UTF-8 when the client offers it (no conversion needed), else UTF-16, which every
/// client must support.
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

pub fn offset(index: &LineIndex, pos: lsp::Position, enc: PositionEncoding) -> usize {
    index.offset(Position::new(pos.line, pos.character), enc)
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
    // End at the end of the last line's text rather than the next line's start, so
    // the range does not spill onto a line the hunk does not touch.
    let last = end - 1;
    let end_pos = match index.line_range(last) {
        Some(r) => position(index, r.end, enc),
        None => lsp::Position::new(last as u32, 0),
    };
    lsp::Range::new(start_pos, end_pos)
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

pub fn uri_from_path(path: &Path) -> Option<Uri> {
    let url = url::Url::from_file_path(path).ok()?;
    Uri::from_str(url.as_str()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

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
