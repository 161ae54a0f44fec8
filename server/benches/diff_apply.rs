//! Speed of the diff module on a realistic file: 10 000 lines of code-like text and
//! an agent's result with 20 hunks spread through it, while the user has inserted 5
//! lines at the top of the buffer (so every hunk has shifted).
//!
//! Measured, each many times with `Instant` (one warm-up pass first):
//! - `compute_hunks(base, result)`;
//! - `reanchor` of all 20 hunks in the shifted buffer (one sample = 20 calls), and
//!   `reanchor_many` of them (one split of the text);
//! - `accept` of one hunk in the shifted buffer;
//! - `apply_all` of the 20 hunks in the shifted buffer.
//!
//! Before timing, the results are checked (hunk count, where each hunk reanchors,
//! the text after accepting one or all), so the bench cannot time a no-op. Medians
//! and p99 in microseconds go to stdout and to `target/bench/diff_apply.md`.
//! Iterations: `HANDOFF_BENCH_ITERS` scales them (default 1).

mod common;
use common::*;

use std::hint::black_box;
use std::time::Instant;

use handoff::diff::{
    accept, apply_all, apply_edit, compute_hunks, reanchor, reanchor_many, Anchor, Hunk,
};

const LINES: usize = 10_000;
const HUNKS: usize = 20;
/// Lines the user typed at the top of the buffer while the agent worked.
const USER_LINES: usize = 5;

fn main() {
    let base = base_text();
    let result = result_text(&base);
    let user: String = (0..USER_LINES)
        .map(|i| format!("// note {i} the user typed while the agent worked\n"))
        .collect();
    let shifted = format!("{user}{base}");
    assert_eq!(base.lines().count(), LINES);

    // Right answers first.
    let hunks = compute_hunks(&base, &result);
    check(&hunks, &base, &result, &user, &shifted);
    let one = &hunks[HUNKS / 2];

    let scale = iterations_scale();
    let rows = [
        measure("compute_hunks", 300 * scale, || {
            black_box(compute_hunks(black_box(&base), black_box(&result)))
        }),
        measure(
            &format!("reanchor ×{HUNKS} (shifted)"),
            1_000 * scale,
            || {
                for hunk in &hunks {
                    black_box(reanchor(black_box(hunk), black_box(&shifted)));
                }
            },
        ),
        measure(
            &format!("reanchor_many ({HUNKS} hunks, shifted)"),
            1_000 * scale,
            || black_box(reanchor_many(black_box(&hunks), black_box(&shifted))),
        ),
        measure("accept (one hunk, shifted)", 5_000 * scale, || {
            black_box(accept(black_box(one), black_box(&shifted)))
        }),
        measure(
            &format!("apply_all ({HUNKS} hunks, shifted)"),
            2_000 * scale,
            || black_box(apply_all(black_box(&hunks), black_box(&shifted))),
        ),
    ];

    let table = render(&rows, &base);
    println!("{table}");
    write_table("diff_apply", &table);
}

/// `HANDOFF_BENCH_ITERS`, or 1.
fn iterations_scale() -> usize {
    match std::env::var("HANDOFF_BENCH_ITERS") {
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => panic!("HANDOFF_BENCH_ITERS must be a positive integer, not {v:?}"),
        },
        Err(_) => 1,
    }
}

/// A small deterministic generator (64-bit LCG), so every run sees the same text.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.next() as usize % items.len()]
    }
}

/// 10 000 lines that look like Rust: functions of a few statements, comments, blank
/// lines and closing braces (so many lines repeat, as in real code).
fn base_text() -> String {
    let mut rng = Rng(0x5eed);
    let names = [
        "buffer", "index", "count", "offset", "hunk", "line", "state", "task", "path", "entry",
    ];
    let calls = [
        "compute", "resolve", "split", "parse", "render", "update", "lookup", "merge",
    ];
    let types = ["usize", "u32", "String", "&str", "Vec<u8>", "bool"];
    let mut lines = Vec::with_capacity(LINES);
    let mut function = 0;
    while lines.len() < LINES {
        function += 1;
        let ty = rng.pick(&types);
        lines.push(format!("/// Handles case {function}."));
        lines.push(format!(
            "pub fn {}_{function}(input: &{ty}, limit: usize) -> Option<{ty}> {{",
            rng.pick(&calls)
        ));
        let body = 2 + rng.next() as usize % 7;
        for _ in 0..body {
            let name = rng.pick(&names);
            let n = rng.next() % 1000;
            let line = match rng.next() % 6 {
                0 => format!("    let {name}_{n} = {}(input, {n});", rng.pick(&calls)),
                1 => format!("    if {name}_{n} > limit {{ return None; }}"),
                2 => format!("    // {name} must stay below {n}"),
                3 => "    }".to_string(),
                4 => String::new(),
                _ => format!("    {name}.push({n});"),
            };
            lines.push(line);
        }
        lines.push("    None".to_string());
        lines.push("}".to_string());
        lines.push(String::new());
    }
    lines.truncate(LINES);
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// The base with 20 edits spread through it, cycling through replacing one line,
/// replacing two lines by three, inserting two lines, and deleting one line. Each
/// edit sits at a function signature (a unique line), every 500 lines or so.
fn result_text(base: &str) -> String {
    let mut lines: Vec<String> = base.lines().map(|l| format!("{l}\n")).collect();
    let mut sites = Vec::with_capacity(HUNKS);
    for k in 0..HUNKS {
        let from = 250 + k * (LINES / HUNKS);
        let site = (from..LINES)
            .find(|&i| lines[i].starts_with("pub fn "))
            .expect("a function signature after every site");
        sites.push(site);
    }
    // From the bottom up, so the sites above keep their numbers.
    for (k, &site) in sites.iter().enumerate().rev() {
        match k % 4 {
            0 => lines[site] = lines[site].replace("limit: usize", "limit: u64"),
            1 => {
                let new = [
                    format!("// edit {k}: the agent split this signature\n"),
                    lines[site].replace("limit", "max"),
                    format!("    debug_assert!(max > {k});\n"),
                ];
                lines.splice(site..site + 2, new);
            }
            2 => {
                let new = [
                    format!("#[inline] // edit {k}\n"),
                    format!("#[must_use = \"edit {k}\"]\n"),
                ];
                lines.splice(site..site, new);
            }
            _ => {
                lines.remove(site - 1);
            }
        }
    }
    lines.concat()
}

/// The hunks, reanchoring, `accept` and `apply_all` all give the right answers.
fn check(hunks: &[Hunk], base: &str, result: &str, user: &str, shifted: &str) {
    assert_eq!(hunks.len(), HUNKS, "expected one hunk per edit");
    for (i, hunk) in hunks.iter().enumerate() {
        assert_eq!(hunk.index, i);
        let anchor = reanchor(hunk, shifted);
        let start = hunk.base_start + USER_LINES;
        assert_eq!(
            anchor,
            Anchor::Applies {
                start_line: start,
                end_line: start + hunk.base_lines.len(),
            },
            "hunk {i} should reanchor {USER_LINES} lines down"
        );
    }
    // Placing them all at once agrees.
    let one_by_one: Vec<Anchor> = hunks.iter().map(|h| reanchor(h, shifted)).collect();
    assert_eq!(reanchor_many(hunks, shifted), one_by_one);
    // Accepting one hunk changes exactly its lines.
    let one = &hunks[HUNKS / 2];
    let edit = accept(one, shifted).expect("the middle hunk applies");
    let accepted = apply_edit(shifted, &edit);
    let mut expected: Vec<String> = base.lines().map(|l| format!("{l}\n")).collect();
    expected.splice(one.base_start..one.base_end(), one.new_lines.clone());
    assert_eq!(accepted, format!("{user}{}", expected.concat()));
    assert_ne!(accepted, shifted);
    // Accepting all of them gives the agent's result below the user's lines.
    let all = apply_all(hunks, shifted);
    assert!(all.conflicts.is_empty(), "conflicts: {:?}", all.conflicts);
    assert_eq!(all.edits.len(), HUNKS);
    let applied = all
        .edits
        .iter()
        .fold(shifted.to_string(), |text, edit| apply_edit(&text, edit));
    assert_eq!(applied, format!("{user}{result}"));
}

struct Row {
    name: String,
    iterations: usize,
    median_us: f64,
    p99_us: f64,
}

/// Times `iterations` calls of `f` after a warm-up of a tenth as many.
fn measure<T>(name: &str, iterations: usize, mut f: impl FnMut() -> T) -> Row {
    for _ in 0..iterations.div_ceil(10) {
        black_box(f());
    }
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        let out = f();
        let elapsed = started.elapsed();
        black_box(out);
        samples.push(elapsed.as_secs_f64() * 1e6);
    }
    samples.sort_by(f64::total_cmp);
    let n = samples.len();
    let median = if n % 2 == 1 {
        samples[n / 2]
    } else {
        (samples[n / 2 - 1] + samples[n / 2]) / 2.0
    };
    // Nearest rank.
    let p99 = samples[((0.99 * n as f64).ceil() as usize).clamp(1, n) - 1];
    eprintln!("diff_apply: {name}: median {median:.1} µs, p99 {p99:.1} µs");
    Row {
        name: name.to_string(),
        iterations,
        median_us: median,
        p99_us: p99,
    }
}

fn render(rows: &[Row], base: &str) -> String {
    let mut s = String::new();
    s.push_str("## Diff module on a 10 000-line file\n\n");
    s.push_str(&format!(
        "Base: {} lines, {} KiB of code-like text; result: {HUNKS} hunks spread through it; \
         shifted buffer: {USER_LINES} user lines inserted at the top. Times in µs; p99 by \
         nearest rank.\n\n",
        base.lines().count(),
        base.len() / 1024,
    ));
    s.push_str("| operation | iterations | median µs | p99 µs |\n|---|---:|---:|---:|\n");
    for row in rows {
        s.push_str(&format!(
            "| {} | {} | {:.1} | {:.1} |\n",
            row.name, row.iterations, row.median_us, row.p99_us
        ));
    }
    s
}
