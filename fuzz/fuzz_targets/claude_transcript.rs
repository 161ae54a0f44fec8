//! Claude Code's `--output-format stream-json` output, as a hostile agent may print it.
#![no_main]

use handoff::agents::transcript::claude;
use handoff::agents::OutputFormat;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    handoff_fuzz::transcript::check(data, claude::parse, OutputFormat::ClaudeStreamJson);
});
