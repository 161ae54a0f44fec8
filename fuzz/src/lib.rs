//! The invariants the fuzz targets check, shared by the targets in `fuzz_targets/`.
//!
//! Each target hands libFuzzer's bytes to one of these functions, which panic (and so
//! make libFuzzer report a crash) when Handoff breaks a promise on that input. The
//! promises are the ones Handoff's own documentation makes about hostile input; see
//! docs/fuzzing.md.

pub mod config;
pub mod transcript;
