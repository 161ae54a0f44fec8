#!/usr/bin/env bash
# Installs what the VS Code end-to-end test drives — code-server (real VS Code: a Node
# extension host and the web workbench) and playwright-core — and prints the directory
# holding their node_modules. Chromium, ripgrep and the Kerberos headers come from apt.
#
# Cached under ~/.cache/handoff/vscode-e2e/<versions>/ : a second run only checks the
# stamp. The install happens in a scratch directory renamed into place at the end, so
# an interrupted install never leaves a half-built cache behind.
#
# Works offline apart from the npm registry and Debian's packages (measured facts:
# /work/shared/notes/vscode-e2e.md):
#   - as root, code-server's postinstall needs npm_config_unsafe_perm=true;
#   - prebuilt native modules are downloaded from GitHub, which is unreachable: build
#     from source (npm_config_build_from_source), against the local Node headers
#     (npm_config_nodedir=/usr), which needs libkrb5-dev for `kerberos`;
#   - node-pty's postinstall runs `npx node-gyp`: npm_config_yes=true;
#   - @vscode/ripgrep's postinstall downloads rg from GitHub: seed its download cache
#     (in $TMPDIR) with Debian's rg;
#   - a plain `npm rebuild` fails on the optional `keytar`: rebuild only what needs it.
set -euo pipefail

CODE_SERVER_VERSION=4.100.3    # VS Code 1.100.3, the last line that runs on Node 20
PLAYWRIGHT_VERSION=1.65.1

log() { printf '[vscode-e2e deps] %s\n' "$*" >&2; }
die() { printf '[vscode-e2e deps] FAILED: %s\n' "$*" >&2; exit 1; }

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null) || die "node is missing (Node 20 is needed)"
[ "$node_major" = 20 ] || die "code-server $CODE_SERVER_VERSION needs Node 20; this is Node $node_major"

# --- Debian packages ------------------------------------------------------------
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v rg >/dev/null 2>&1 || missing+=(ripgrep)
dpkg -s libkrb5-dev >/dev/null 2>&1 || missing+=(libkrb5-dev)
for tool in make g++ python3; do   # node-gyp's toolchain; package name = tool name
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "missing ${missing[*]}; install them with apt-get (needs root)"
  log "apt-get install ${missing[*]}"
  apt-get update -qq >&2 || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2 \
    || die "apt-get install ${missing[*]} failed"
fi
[ -f /usr/include/node/node.h ] || die "Node headers are missing in /usr/include/node (needed to build native modules)"

# --- npm packages -----------------------------------------------------------------
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/handoff/vscode-e2e"
key="code-server-$CODE_SERVER_VERSION-playwright-$PLAYWRIGHT_VERSION-node$node_major"
dest="$cache_root/$key"
if [ -f "$dest/.complete" ] && [ -x "$dest/node_modules/.bin/code-server" ] \
  && [ -f "$dest/node_modules/playwright-core/package.json" ]; then
  echo "$dest"
  exit 0
fi

mkdir -p "$cache_root"
work=$(mktemp -d "$cache_root/.install-XXXXXX")
trap 'rm -rf "$work"' EXIT
log "installing code-server@$CODE_SERVER_VERSION and playwright-core@$PLAYWRIGHT_VERSION into $dest (a few minutes on a fresh machine)"
mkdir -p "$work/tmp"
export TMPDIR="$work/tmp"
export npm_config_unsafe_perm=true npm_config_yes=true npm_config_build_from_source=true npm_config_nodedir=/usr
export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false
cd "$work"
printf '{ "name": "handoff-vscode-e2e-deps", "private": true }\n' > package.json
npm install --ignore-scripts --no-save --loglevel=error \
  "code-server@$CODE_SERVER_VERSION" "playwright-core@$PLAYWRIGHT_VERSION" >&2 \
  || die "npm install code-server playwright-core failed"

# Seed @vscode/ripgrep's download cache with Debian's rg, under the name its
# postinstall looks for.
shrinkwrap=node_modules/code-server/lib/vscode/npm-shrinkwrap.json
rg_pkg=$(node -p "require('./$shrinkwrap').packages['node_modules/@vscode/ripgrep'].version") \
  || die "cannot read @vscode/ripgrep's version from $shrinkwrap"
npm pack --silent --pack-destination "$work/tmp" "@vscode/ripgrep@$rg_pkg" >/dev/null \
  || die "npm pack @vscode/ripgrep@$rg_pkg failed"
mkdir -p "$work/tmp/rg-pkg"
tar -xzf "$work/tmp"/vscode-ripgrep-*.tgz -C "$work/tmp/rg-pkg"
rg_ver=$(sed -n "s/^const VERSION = '\(v[^']*\)'.*/\1/p" "$work/tmp/rg-pkg/package/lib/postinstall.js")
[ -n "$rg_ver" ] || die "cannot read the ripgrep version from @vscode/ripgrep@$rg_pkg's postinstall.js"
seed="$TMPDIR/vscode-ripgrep-cache-$rg_pkg"
mkdir -p "$seed" "$work/tmp/rg-bin"
cp "$(command -v rg)" "$work/tmp/rg-bin/rg"
tar -czf "$seed/ripgrep-$rg_ver-x86_64-unknown-linux-musl.tar.gz" -C "$work/tmp/rg-bin" rg
log "seeded the ripgrep cache: @vscode/ripgrep $rg_pkg, rg $rg_ver (Debian's $(rg --version | head -1))"

# code-server's postinstall installs VS Code's own dependencies (native modules built
# from source); argon2 and vsce-sign are native too.
npm rebuild --loglevel=error argon2 code-server @vscode/vsce-sign >&2 \
  || die "npm rebuild argon2 code-server @vscode/vsce-sign failed (see above)"
[ -x node_modules/.bin/code-server ] || die "node_modules/.bin/code-server is missing after install"
node_modules/.bin/code-server --version >/dev/null 2>&1 || die "the installed code-server does not run"

rm -rf "$work/tmp"
touch "$work/.complete"
rm -rf "$dest"
mv "$work" "$dest"
trap - EXIT
log "installed into $dest"
echo "$dest"
