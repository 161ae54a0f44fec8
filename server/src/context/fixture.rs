//! Test fixtures: text with `$0` markers for the cursor or a selection.

use super::lines::LineRange;

/// The text without its `$0` marker, and the line the marker was on.
pub(crate) fn cursor(fixture: &str) -> (String, usize) {
    let (text, range) = selection(fixture);
    assert_eq!(range.first, range.last, "one `$0` expected in:\n{fixture}");
    (text, range.first)
}

/// The text without its `$0` markers (one or two), and the lines between them.
pub(crate) fn selection(fixture: &str) -> (String, LineRange) {
    let lines: Vec<usize> = fixture
        .lines()
        .enumerate()
        .flat_map(|(line, text)| std::iter::repeat_n(line, text.matches("$0").count()))
        .collect();
    let range = match lines[..] {
        [line] => LineRange::line(line),
        [first, last] => LineRange::new(first, last),
        _ => panic!("one or two `$0` expected in:\n{fixture}"),
    };
    (fixture.replace("$0", ""), range)
}
