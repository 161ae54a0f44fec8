//! Conversions between byte offsets and (line, character) positions.
//!
//! Editors address text by line and by a character offset counted in the code
//! units of the encoding negotiated at `initialize` (UTF-16 unless both sides
//! agree otherwise). This is the one place that does that arithmetic; nothing
//! else in the server should count `char_indices()` on its own.
//!
//! Conversions never panic: a position past the end of its line clamps to the
//! line end, a line past the last one clamps to the end of the text, and an
//! offset or position inside a character or a `\r\n` pair moves back to the
//! start of that character or pair.

use std::ops::Range;

/// The unit in which a [`Position`]'s `character` counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PositionEncoding {
    /// Bytes of UTF-8.
    Utf8,
    /// UTF-16 code units: characters outside the BMP (most emoji) count two.
    Utf16,
    /// Unicode scalar values.
    Utf32,
}

/// A zero-based line and a character offset within it, in some
/// [`PositionEncoding`]. `u32` because that is what the protocol carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub line: u32,
    pub character: u32,
}

impl Position {
    pub fn new(line: u32, character: u32) -> Position {
        Position { line, character }
    }
}

/// Line boundaries of one text, and where its multi-byte characters are.
///
/// The index does not keep the text: it is built once per document version
/// and the text it was built from is passed back in where needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineIndex {
    /// Byte offset where each line starts; `line_starts[0] == 0`. A text that
    /// ends with a terminator has an empty last line, as editors show it.
    line_starts: Vec<usize>,
    /// Byte offset where each line's terminator starts (its content end).
    line_ends: Vec<usize>,
    /// Every character longer than one byte, by offset. ASCII-only lines,
    /// the common case, cost nothing here.
    multi_byte_chars: Vec<MultiByteChar>,
    text_len: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MultiByteChar {
    offset: usize,
    len_utf8: u8,
    len_utf16: u8,
}

impl MultiByteChar {
    fn end(self) -> usize {
        self.offset + usize::from(self.len_utf8)
    }

    fn len_in(self, encoding: PositionEncoding) -> usize {
        match encoding {
            PositionEncoding::Utf8 => usize::from(self.len_utf8),
            PositionEncoding::Utf16 => usize::from(self.len_utf16),
            PositionEncoding::Utf32 => 1,
        }
    }
}

impl LineIndex {
    pub fn new(text: &str) -> LineIndex {
        let mut line_starts = vec![0];
        let mut line_ends = Vec::new();
        let mut multi_byte_chars = Vec::new();
        let mut chars = text.char_indices().peekable();
        while let Some((offset, ch)) = chars.next() {
            match ch {
                '\n' => {
                    line_ends.push(offset);
                    line_starts.push(offset + 1);
                }
                '\r' => {
                    line_ends.push(offset);
                    if chars.next_if(|&(_, next)| next == '\n').is_some() {
                        line_starts.push(offset + 2);
                    } else {
                        line_starts.push(offset + 1);
                    }
                }
                _ if !ch.is_ascii() => multi_byte_chars.push(MultiByteChar {
                    offset,
                    // A char is at most 4 bytes and 2 UTF-16 units.
                    len_utf8: ch.len_utf8() as u8,
                    len_utf16: ch.len_utf16() as u8,
                }),
                _ => {}
            }
        }
        line_ends.push(text.len());
        LineIndex {
            line_starts,
            line_ends,
            multi_byte_chars,
            text_len: text.len(),
        }
    }

    /// Length in bytes of the indexed text.
    pub fn text_len(&self) -> usize {
        self.text_len
    }

    /// Number of lines, at least one: `""` has one line, `"a\n"` has two.
    pub fn line_count(&self) -> usize {
        self.line_starts.len()
    }

    /// Byte offset at which each line starts.
    pub fn line_starts(&self) -> &[usize] {
        &self.line_starts
    }

    pub fn line_start(&self, line: usize) -> Option<usize> {
        self.line_starts.get(line).copied()
    }

    /// Byte range of `line` without its terminator.
    pub fn line_range(&self, line: usize) -> Option<Range<usize>> {
        Some(self.line_start(line)?..self.line_ends[line])
    }

    /// Text of `line` without its terminator; `None` past the last line or if
    /// `text` is not the text this index was built from.
    pub fn line_text<'a>(&self, text: &'a str, line: usize) -> Option<&'a str> {
        text.get(self.line_range(line)?)
    }

    /// The position of a byte offset.
    pub fn position(&self, offset: usize, encoding: PositionEncoding) -> Position {
        let offset = offset.min(self.text_len);
        // `line_starts[0] == 0 <= offset`, so at least one start qualifies.
        let line = self.line_starts.partition_point(|&start| start <= offset) - 1;
        let start = self.line_starts[line];
        let offset = self.floor_char_boundary(offset.min(self.line_ends[line]));
        let character = offset
            - start
            - self
                .multi_byte_chars_in(start..offset)
                .iter()
                .map(|c| usize::from(c.len_utf8) - c.len_in(encoding))
                .sum::<usize>();
        Position {
            line: saturating_u32(line),
            character: saturating_u32(character),
        }
    }

    /// The byte offset of a position, clamped into the text.
    pub fn offset(&self, position: Position, encoding: PositionEncoding) -> usize {
        let Some(line_range) = self.line_range(position.line as usize) else {
            return self.text_len;
        };
        let wanted = position.character as usize;
        // Walk the line in runs: one byte per unit up to each multi-byte
        // character, then that character as a whole.
        let mut offset = line_range.start;
        let mut units = 0;
        for &c in self.multi_byte_chars_in(line_range.clone()) {
            let ascii_run = c.offset - offset;
            if wanted < units + ascii_run {
                return offset + (wanted - units);
            }
            units += ascii_run;
            if wanted < units + c.len_in(encoding) {
                // At or inside this character: its start.
                return c.offset;
            }
            units += c.len_in(encoding);
            offset = c.end();
        }
        offset.saturating_add(wanted - units).min(line_range.end)
    }

    fn multi_byte_chars_in(&self, range: Range<usize>) -> &[MultiByteChar] {
        let first = self
            .multi_byte_chars
            .partition_point(|c| c.offset < range.start);
        let end = self
            .multi_byte_chars
            .partition_point(|c| c.offset < range.end);
        &self.multi_byte_chars[first..end]
    }

    fn floor_char_boundary(&self, offset: usize) -> usize {
        let after = self.multi_byte_chars.partition_point(|c| c.offset < offset);
        match after.checked_sub(1).map(|i| self.multi_byte_chars[i]) {
            Some(c) if offset < c.end() => c.offset,
            _ => offset,
        }
    }
}

fn saturating_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use PositionEncoding::{Utf16, Utf32, Utf8};

    /// Splits a fixture at its `$0` marker into the text and the marker's offset.
    fn fixture(fixture: &str) -> (String, usize) {
        let offset = fixture.find("$0").expect("fixture has a $0 marker");
        (fixture.replacen("$0", "", 1), offset)
    }

    /// The marker's offset and the position convert into each other.
    fn check_round_trip(fixture_text: &str, expected: [(u32, u32); 3]) {
        let (text, offset) = fixture(fixture_text);
        let index = LineIndex::new(&text);
        for (encoding, (line, character)) in [Utf8, Utf16, Utf32].into_iter().zip(expected) {
            let position = Position::new(line, character);
            assert_eq!(
                index.position(offset, encoding),
                position,
                "position of {fixture_text:?} in {encoding:?}"
            );
            assert_eq!(
                index.offset(position, encoding),
                offset,
                "offset of {position:?} in {fixture_text:?} in {encoding:?}"
            );
        }
    }

    #[test]
    fn round_trips() {
        // (fixture, [utf8, utf16, utf32] positions of $0)
        let cases: &[(&str, [(u32, u32); 3])] = &[
            ("$0", [(0, 0); 3]),
            ("ab$0c", [(0, 2); 3]),
            ("a\n$0b", [(1, 0); 3]),
            ("a\n$0", [(1, 0); 3]),
            ("a$0\r\nb", [(0, 1); 3]),
            ("a\r\n$0b", [(1, 0); 3]),
            ("a\r\n\r\n$0b", [(2, 0); 3]),
            ("a\r$0b", [(1, 0); 3]),
            ("a\r\r\n$0", [(2, 0); 3]),
            ("\t$0x", [(0, 1); 3]),
            ("\t\tfn$0 f()", [(0, 4); 3]),
            ("😀$0x", [(0, 4), (0, 2), (0, 1)]),
            ("a😀b😀$0", [(0, 10), (0, 6), (0, 4)]),
            ("中文$0x", [(0, 6), (0, 2), (0, 2)]),
            ("😀\r\n中$0x", [(1, 3), (1, 1), (1, 1)]),
            ("\t中😀\n\t$0", [(1, 1); 3]),
            ("e\u{301}$0", [(0, 3), (0, 2), (0, 2)]),
            ("é$0", [(0, 2), (0, 1), (0, 1)]),
        ];
        for &(fixture_text, expected) in cases {
            check_round_trip(fixture_text, expected);
        }
    }

    /// Offsets that fall outside the text or inside a character or a `\r\n`.
    #[test]
    fn positions_of_odd_offsets_clamp() {
        // (text, offset, encoding, expected position)
        let cases: &[(&str, usize, PositionEncoding, (u32, u32))] = &[
            ("a\r\nb", 2, Utf16, (0, 1)),
            ("a\r\nb", 2, Utf8, (0, 1)),
            ("ab", 10, Utf16, (0, 2)),
            ("ab\n", 10, Utf16, (1, 0)),
            ("", 1, Utf8, (0, 0)),
            ("😀x", 2, Utf16, (0, 0)),
            ("😀x", 3, Utf8, (0, 0)),
            ("x中", 2, Utf32, (0, 1)),
        ];
        for &(text, offset, encoding, (line, character)) in cases {
            assert_eq!(
                LineIndex::new(text).position(offset, encoding),
                Position::new(line, character),
                "position of offset {offset} in {text:?} in {encoding:?}"
            );
        }
    }

    /// Positions past the line end or the last line, or inside a character,
    /// land on the `$0` marker.
    #[test]
    fn offsets_of_odd_positions_clamp() {
        // (fixture, position, encoding)
        let cases: &[(&str, (u32, u32), PositionEncoding)] = &[
            ("ab$0\ncd", (0, 10), Utf16),
            ("ab$0\r\ncd", (0, 3), Utf16),
            ("ab$0\r\ncd", (0, 4), Utf8),
            ("ab$0\rcd", (0, 3), Utf32),
            ("ab\ncd$0", (5, 0), Utf16),
            ("ab\n$0", (9, 9), Utf16),
            ("ab$0", (0, u32::MAX), Utf8),
            ("x\n$0", (u32::MAX, u32::MAX), Utf16),
            ("$0😀x", (0, 1), Utf16),
            ("$0😀x", (0, 3), Utf8),
            ("$0中", (0, 1), Utf8),
            ("$0中😀", (0, 2), Utf8),
            ("中$0😀", (0, 5), Utf8),
            ("a😀$0", (0, 5), Utf16),
        ];
        for &(fixture_text, (line, character), encoding) in cases {
            let (text, offset) = fixture(fixture_text);
            let position = Position::new(line, character);
            assert_eq!(
                LineIndex::new(&text).offset(position, encoding),
                offset,
                "offset of {position:?} in {fixture_text:?} in {encoding:?}"
            );
        }
    }

    #[test]
    fn lines() {
        // (text, line starts, line texts without terminators)
        let cases: &[(&str, &[usize], &[&str])] = &[
            ("", &[0], &[""]),
            ("a", &[0], &["a"]),
            ("a\n", &[0, 2], &["a", ""]),
            ("a\nb", &[0, 2], &["a", "b"]),
            ("a\r\nb\r\n", &[0, 3, 6], &["a", "b", ""]),
            ("a\rb\n\nc", &[0, 2, 4, 5], &["a", "b", "", "c"]),
            ("\t中😀\r\nx", &[0, 10], &["\t中😀", "x"]),
        ];
        for &(text, starts, texts) in cases {
            let index = LineIndex::new(text);
            assert_eq!(index.line_count(), starts.len(), "line count of {text:?}");
            assert_eq!(index.line_starts(), starts, "line starts of {text:?}");
            let actual: Vec<_> = (0..index.line_count())
                .map(|line| index.line_text(text, line).unwrap_or("<none>"))
                .collect();
            assert_eq!(actual, texts, "line texts of {text:?}");
            assert_eq!(index.line_text(text, starts.len()), None);
            assert_eq!(index.text_len(), text.len());
        }
    }

    /// Hunks split lines with `similar`; positions must agree on where lines
    /// start, or an accepted hunk would land on the wrong line in the editor.
    #[test]
    fn lines_split_like_hunks() {
        let texts = [
            "",
            "a",
            "a\n",
            "a\r\nb",
            "a\rb\r\r\nc\n",
            "\n\n",
            "😀\r\n中",
        ];
        for text in texts {
            let mut expected = vec![0];
            let mut offset = 0;
            for line in similar::DiffableStr::tokenize_lines(text) {
                offset += line.len();
                if line.ends_with(['\n', '\r']) {
                    expected.push(offset);
                }
            }
            assert_eq!(LineIndex::new(text).line_starts(), expected, "{text:?}");
        }
    }
}
