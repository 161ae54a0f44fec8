//! Fault injection for the crash tests: `HANDOFF_CRASH_AT=<point>` makes the process
//! die (as `kill -9` would: no unwinding, no cleanup) when it reaches that point, so
//! the tests can check that a front-end killed at any step of a task's life loses
//! nothing. Unset (always, outside those tests), every point is a no-op.

/// The named points, in the order a task passes them.
pub const POINTS: &[&str] = &[
    "start:after-claim",
    "start:after-workspace",
    "start:after-container",
    "finalize:after-log",
    "finalize:after-import",
    "finalize:after-save",
];

/// Dies here if `HANDOFF_CRASH_AT` names this point.
pub fn point(name: &str) {
    debug_assert!(POINTS.contains(&name), "unknown fault point {name}");
    if std::env::var_os("HANDOFF_CRASH_AT").is_some_and(|v| v == name) {
        eprintln!("handoff: fault injection: dying at {name}");
        std::process::abort();
    }
}
