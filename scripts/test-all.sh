#!/usr/bin/env bash
# Runs every test of Handoff on this machine: installs and starts what the tests need
# (scripts/setup.sh), then the Rust unit and end-to-end tests against the real Docker
# engine. Nothing is skipped: a missing part is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test --workspace
