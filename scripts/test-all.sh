#!/usr/bin/env bash
# Runs every test of Handoff on this machine: installs and starts what the tests need
# (scripts/setup.sh), then the Rust unit and end-to-end tests against the real Docker
# engine. Nothing is skipped: a missing part is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# The Kubernetes node of k8s_e2e (run by `cargo test --workspace`): built from Debian's
# source package on a fresh machine (~10–12 minutes on 2 cores), found in
# ~/.cache/handoff/k8s afterwards. A node that cannot be built fails here, loudly.
scripts/k8s-node.sh build >/dev/null
cargo test --workspace
# The engine scenarios again with shipped workspaces (copied in and out through the
# Engine API, as for a remote engine) on the local engine: task to branch, failed
# agent, the agent's commits, bytes, cancel, attempts; setup and check; hostile
# results (remote_e2e runs them on a TLS engine inside `cargo test --workspace`).
HANDOFF_TEST_WORKSPACE=shipped cargo test --test engine_e2e -- \
  a_delegated_shell_task a_failing_agent_keeps agent_commits_are_kept crlf_and_non_utf8 \
  cancel_stops several_attempts
HANDOFF_TEST_WORKSPACE=shipped cargo test --test steps_e2e --test security_e2e
# The faults that do not time themselves by the host's upper folder (which a shipped
# workspace fills only when its turn ends): front-end killed at every step, full disk
# then recover, damaged records.
HANDOFF_TEST_WORKSPACE=shipped cargo test --test faults_e2e -- \
  a_front_end_killed a_full_disk a_damaged
HANDOFF_TEST_WORKSPACE=shipped cargo test --test limits_e2e -- an_agent_that_fills_its_disk_limit
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
