//! Line ranges, and reading a few lines of a large text without splitting all of it.
//!
//! Lines are 0-based; a line ends at `\n`, and a `\r` before it is not part of the
//! line, so CRLF text reads like LF text.

use serde::{Deserialize, Serialize};

/// Lines `first..=last`, both included, 0-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LineRange {
    pub first: usize,
    pub last: usize,
}

impl LineRange {
    /// The lines between `a` and `b`, in either order.
    pub fn new(a: usize, b: usize) -> LineRange {
        LineRange {
            first: a.min(b),
            last: a.max(b),
        }
    }

    pub fn line(line: usize) -> LineRange {
        LineRange {
            first: line,
            last: line,
        }
    }

    pub fn line_count(self) -> usize {
        self.last - self.first + 1
    }

    pub fn contains(self, line: usize) -> bool {
        self.first <= line && line <= self.last
    }

    pub fn contains_range(self, other: LineRange) -> bool {
        self.first <= other.first && other.last <= self.last
    }
}

/// The text of `lines`, joined with `\n` and without `\r`; lines past the end of
/// `text` are left out.
pub fn excerpt(text: &str, lines: LineRange) -> String {
    Window::new(text, lines.first, lines.last).excerpt(lines)
}

/// `lines` widened by `radius` lines on each side, within the text.
pub fn surrounding_lines(text: &str, lines: LineRange, radius: usize) -> LineRange {
    Window::new(text, lines.first, lines.last.saturating_add(radius)).surrounding(lines, radius)
}

/// Some consecutive lines of a text.
#[derive(Debug)]
pub(crate) struct Window<'a> {
    first: usize,
    lines: Vec<&'a str>,
    /// Whether the last line of the text is in the window.
    reaches_end: bool,
}

impl<'a> Window<'a> {
    /// Lines `first..=last` of `text`, fewer where the text ends earlier.
    pub(crate) fn new(text: &'a str, first: usize, last: usize) -> Window<'a> {
        let Some(start) = line_start(text, first) else {
            return Window {
                first,
                lines: Vec::new(),
                reaches_end: true,
            };
        };
        let wanted = last.saturating_sub(first).saturating_add(1);
        let mut split = text[start..].split('\n');
        let lines: Vec<&str> = split.by_ref().take(wanted).map(strip_cr).collect();
        let reaches_end = split.next().is_none();
        Window {
            first,
            lines,
            reaches_end,
        }
    }

    pub(crate) fn first(&self) -> usize {
        self.first
    }

    /// One past the last line in the window.
    pub(crate) fn end(&self) -> usize {
        self.first + self.lines.len()
    }

    pub(crate) fn reaches_end(&self) -> bool {
        self.reaches_end
    }

    /// `lines` widened by `radius` lines on each side, within the text; the window
    /// must hold the lines below `lines` that are wanted.
    pub(crate) fn surrounding(&self, lines: LineRange, radius: usize) -> LineRange {
        let wanted_last = lines
            .last
            .saturating_add(radius)
            .min(self.end().saturating_sub(1));
        let mut last = wanted_last.max(lines.first);
        // The empty "line" after a final newline is not worth showing.
        if self.reaches_end
            && last + 1 == self.end()
            && last > lines.last
            && self.get(last) == Some("")
        {
            last -= 1;
        }
        LineRange::new(lines.first.saturating_sub(radius), last)
    }

    /// The lines of `lines` that are in the window, joined with `\n`.
    pub(crate) fn excerpt(&self, lines: LineRange) -> String {
        let kept: Vec<&str> = (lines.first..=lines.last)
            .map_while(|line| self.get(line))
            .collect();
        kept.join("\n")
    }

    pub(crate) fn get(&self, line: usize) -> Option<&'a str> {
        line.checked_sub(self.first)
            .and_then(|index| self.lines.get(index).copied())
    }
}

fn strip_cr(line: &str) -> &str {
    line.strip_suffix('\r').unwrap_or(line)
}

/// Byte offset where `line` starts, `None` past the end of the text.
///
/// A code action must answer within milliseconds even in a 10 MB file, so this counts
/// newlines a chunk at a time (the compiler vectorizes the count) rather than
/// iterating over lines.
pub(crate) fn line_start(text: &str, line: usize) -> Option<usize> {
    const CHUNK: usize = 4096;
    let bytes = text.as_bytes();
    let mut remaining = line;
    let mut offset = 0;
    if remaining == 0 {
        return Some(0);
    }
    while let Some(chunk) = bytes.get(offset..offset + CHUNK) {
        let newlines = count_newlines(chunk);
        if newlines >= remaining {
            break;
        }
        remaining -= newlines;
        offset += CHUNK;
    }
    for (index, &byte) in bytes[offset..].iter().enumerate() {
        if byte == b'\n' {
            remaining -= 1;
            if remaining == 0 {
                return Some(offset + index + 1);
            }
        }
    }
    None
}

fn count_newlines(chunk: &[u8]) -> usize {
    // A byte-wide counter per 255 bytes cannot overflow, and this shape is what the
    // compiler turns into packed compares and adds (measured: about 1 ms per 10 MB,
    // several times faster than counting into a `usize`).
    chunk
        .chunks(255)
        .map(|part| {
            let count = part.iter().fold(0u8, |count, &byte| {
                count.wrapping_add(u8::from(byte == b'\n'))
            });
            usize::from(count)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_line_starts() {
        let cases: &[(&str, usize, Option<usize>)] = &[
            ("", 0, Some(0)),
            ("", 1, None),
            ("a\nbc\n", 1, Some(2)),
            ("a\nbc\n", 2, Some(5)),
            ("a\nbc\n", 3, None),
            ("a\r\nb", 1, Some(3)),
        ];
        for &(text, line, expected) in cases {
            assert_eq!(line_start(text, line), expected, "{text:?} line {line}");
        }
    }

    #[test]
    fn finds_line_starts_past_many_chunks() {
        let text = "0123456789\n".repeat(10_000);
        assert_eq!(line_start(&text, 9_999), Some(9_999 * 11));
        assert_eq!(line_start(&text, 10_000), Some(10_000 * 11));
        assert_eq!(line_start(&text, 10_001), None);
    }

    #[test]
    fn windows_strip_carriage_returns() {
        let window = Window::new("a\r\nb\r\nc", 1, 5);
        assert_eq!((window.first(), window.end()), (1, 3));
        assert_eq!(window.get(0), None);
        assert_eq!(window.get(1), Some("b"));
        assert_eq!(window.get(2), Some("c"));
        assert!(window.reaches_end());
        assert!(!Window::new("a\nb\nc", 0, 1).reaches_end());
    }

    #[test]
    fn excerpts_and_surroundings() {
        let text = "0\n1\r\n2\n3\n4";
        assert_eq!(excerpt(text, LineRange::new(1, 2)), "1\n2");
        assert_eq!(excerpt(text, LineRange::new(3, 9)), "3\n4");
        assert_eq!(
            surrounding_lines(text, LineRange::line(1), 2),
            LineRange::new(0, 3)
        );
        assert_eq!(
            surrounding_lines(text, LineRange::line(4), 2),
            LineRange::new(2, 4)
        );
        assert_eq!(
            surrounding_lines("0\n1\n", LineRange::line(0), 5),
            LineRange::new(0, 1)
        );
    }
}
