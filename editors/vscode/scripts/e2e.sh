#!/usr/bin/env bash
# The VS Code end-to-end test, in one command: installs what it needs (cached), builds
# the extension's .vsix and the `handoff` binary (unless HANDOFF_BIN is set), and runs
# test/e2e/run.mjs — real VS Code (code-server), Chromium, the real server, git and
# Docker — inside a network namespace with only loopback, so nothing leaves the
# machine. Exits non-zero on any failure; never skips.
#
#   editors/vscode/scripts/e2e.sh            # from anywhere
#   HANDOFF_BIN=/path/to/handoff scripts/e2e.sh
#
# Screenshots and logs: editors/vscode/test-artifacts/. The screenshot of the accepted
# hunk is copied to docs/vscode-flow.png when UPDATE_DOCS_SHOT=1.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)     # editors/vscode
root=$(cd "$here/../.." && pwd)            # the repository
start=$(date +%s)

log() { printf '[vscode e2e] %s\n' "$*" >&2; }
die() {
  printf '[vscode e2e] FAILED: %s\n' "$*" >&2
  echo "vscode e2e: 0 passed, 1 failed"
  exit 1
}
elapsed() { echo "$(( $(date +%s) - start ))s"; }

# --- tools ----------------------------------------------------------------------------
command -v node >/dev/null || die "node is missing (Node 20 is needed)"
command -v npm >/dev/null || die "npm is missing"
command -v docker >/dev/null || die "the docker CLI is missing (scripts/setup.sh installs Docker)"
command -v unshare >/dev/null || die "unshare is missing (util-linux)"
if ! command -v ip >/dev/null; then
  [ "$(id -u)" = 0 ] || die "ip (iproute2) is missing"
  log "apt-get install iproute2"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2; } >&2 \
    || die "apt-get install iproute2 failed"
fi

log "code-server and playwright-core (cached under ~/.cache/handoff/vscode-e2e)"
deps=$(bash "$here/scripts/install-e2e-deps.sh") || die "installing the e2e dependencies failed (see above)"

# --- the extension ----------------------------------------------------------------------
cd "$here"
lock_hash=$(sha256sum package-lock.json | cut -c1-16)
if [ "$(cat node_modules/.handoff-lock-hash 2>/dev/null)" != "$lock_hash" ]; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error >&2 || die "npm ci failed"
  echo "$lock_hash" > node_modules/.handoff-lock-hash
fi
log "unit tests"
npm test >&2 || die "the unit tests failed"
log "npm run package"
rm -f handoff.vsix
npm run package >&2 || die "npm run package failed"
[ -f handoff.vsix ] || die "npm run package made no handoff.vsix"

# --- the server and the agent image -------------------------------------------------------
if [ -z "${HANDOFF_BIN:-}" ]; then
  log "cargo build (set HANDOFF_BIN to use a built binary)"
  (cd "$root" && cargo build --quiet --bin handoff) >&2 || die "cargo build failed"
  HANDOFF_BIN="$root/target/debug/handoff"
fi
[ -x "$HANDOFF_BIN" ] || die "HANDOFF_BIN=$HANDOFF_BIN is not an executable"
HANDOFF_BIN=$(readlink -f "$HANDOFF_BIN")
docker info >/dev/null 2>&1 || die "no Docker engine answers (start one: scripts/setup.sh)"
image=$(sh "$root/tests/images/busybox-git.sh") || die "building the offline agent image failed"
log "agent image $image; setup done in $(elapsed)"

# --- the test, with loopback only ----------------------------------------------------------
artifacts="$here/test-artifacts"
rm -rf "$artifacts"
mkdir -p "$artifacts"
docs_shot=""
[ "${UPDATE_DOCS_SHOT:-0}" = 1 ] && docs_shot="$root/docs/vscode-flow.png"
if [ "$(id -u)" = 0 ]; then netns=(unshare -n); else netns=(unshare -r -n); fi
set +e
E2E_DEPS="$deps" HANDOFF_BIN="$HANDOFF_BIN" VSIX="$here/handoff.vsix" AGENT_IMAGE="$image" \
  ARTIFACTS="$artifacts" DOCS_SHOT="$docs_shot" E2E_SETUP_SECONDS="$(( $(date +%s) - start ))" \
  "${netns[@]}" sh -c 'ip link set lo up && exec node "$0"' "$here/test/e2e/run.mjs"
status=$?
set -e
# The test prints the closing line ("vscode e2e: N passed, M failed") last.
exit $status
