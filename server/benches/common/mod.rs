//! Helpers the benches share.

#![allow(dead_code)] // Each bench uses some of them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// `target/`, found from the handoff binary (`target/release/handoff`).
pub fn target_dir() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_handoff"));
    bin.parent()
        .and_then(Path::parent)
        .unwrap_or_else(|| panic!("cannot find target/ from {}", bin.display()))
        .to_path_buf()
}

/// Runs `git ARGS` in `dir` as a bench user; its stdout. Panics on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=Bench",
            "-c",
            "user.email=bench@example.com",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run git: {e}"));
    assert!(
        out.status.success(),
        "git {args:?} in {} failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Writes a bench's table to `target/bench/<name>.md` and says where.
pub fn write_table(name: &str, table: &str) {
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    let path = dir.join(format!("{name}.md"));
    std::fs::write(&path, table).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    eprintln!("{name}: table written to {}", path.display());
}

/// `HANDOFF_BENCH_ROUNDS`, or `default`.
pub fn rounds(default: usize) -> usize {
    match std::env::var("HANDOFF_BENCH_ROUNDS") {
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => panic!("HANDOFF_BENCH_ROUNDS must be a positive integer, not {v:?}"),
        },
        Err(_) => default,
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The `p`-th percentile (0 < p <= 100) by the nearest-rank method.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    assert!(!values.is_empty(), "no samples");
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The median (mean of the middle two for an even count).
pub fn median(values: &[f64]) -> f64 {
    assert!(!values.is_empty(), "no samples");
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// `HANDOFF_BENCH_TASKS`, or `default`.
pub fn tasks(default: usize) -> usize {
    match std::env::var("HANDOFF_BENCH_TASKS") {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("HANDOFF_BENCH_TASKS must be a number, not {v:?}")),
        Err(_) => default,
    }
}

/// The cells of one row of a phases table: the median of each phase named in `names`
/// over the runs' `phases` (`–` where no run has it), then the median of the rest of
/// each run's wall time `walls` (ms). Ends the row.
pub fn phase_cells(
    names: &[&str],
    phases: &[std::collections::BTreeMap<String, f64>],
    walls: &[f64],
) -> String {
    let mut s = String::new();
    for p in names {
        let v: Vec<f64> = phases.iter().filter_map(|x| x.get(*p).copied()).collect();
        if v.is_empty() {
            s.push_str(" – |");
        } else {
            s.push_str(&format!(" {:.0} |", median(&v)));
        }
    }
    let rest: Vec<f64> = walls
        .iter()
        .zip(phases)
        .map(|(w, p)| w - p.values().sum::<f64>())
        .collect();
    s.push_str(&format!(" {:.0} |\n", median(&rest)));
    s
}

/// A task record's `phases_ms`, in ms (empty when it has none).
pub fn phases_of(record: &serde_json::Value) -> std::collections::BTreeMap<String, f64> {
    record["phases_ms"]
        .as_object()
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
                .collect()
        })
        .unwrap_or_default()
}
