#!/usr/bin/env bash
# Runs every test of Handoff on this machine: installs and starts what the tests need
# (scripts/setup.sh), then the Rust unit and end-to-end tests against the real Docker
# engine. Nothing is skipped: a missing part is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test --workspace
# The security suites again, with the front-end as an ordinary user.
HANDOFF_TEST_USER=handoff-tester cargo test --test security_e2e --test egress_e2e
# The parsers of hostile input under libFuzzer, 20 s a target (docs/fuzzing.md;
# longer runs by hand).
scripts/fuzz.sh 20
HANDOFF_BIN="$(pwd)/target/debug/handoff"
export HANDOFF_BIN
# The editors, in real clients: Neovim and Emacs (Eglot) run inside `cargo test`
# above; VS Code (code-server in headless Chromium, offline, under `unshare -n`) here.
editors/vscode/scripts/e2e.sh
