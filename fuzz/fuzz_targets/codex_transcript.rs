//! Codex's `exec --json` output, as a hostile agent may print it.
#![no_main]

use handoff::agents::transcript::codex;
use handoff::agents::OutputFormat;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    handoff_fuzz::transcript::check(data, codex::parse, OutputFormat::CodexExecJson);
});
