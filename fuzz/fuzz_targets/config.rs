//! A repository's `.handoff.toml` (optionally over a user's config file), as a
//! stranger's repository may ship it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    handoff_fuzz::config::check(data);
});
