#!/usr/bin/env bash
# The main job, end to end on this machine, no API key needed: builds handoff, makes a
# small repository with uncommitted work, delegates a task to the built-in `shell`
# agent in a real Docker container, and shows what came back as a branch.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
scripts/setup.sh
cargo build --release --quiet
handoff="$root/target/release/handoff"
image=$(tests/images/busybox-git.sh)

demo=$(mktemp -d /tmp/handoff-demo.XXXXXX)
cd "$demo"
git init -q -b main
git config user.name "Demo User"; git config user.email demo@example.com
cat > greet.py <<'PY'
def greet(name):
    # TODO: greet loudly
    return "hello, " + name
PY
git add greet.py && git commit -qm "initial"
# Uncommitted work: the agent sees it, the user's tree is left alone.
echo 'print(greet("world"))' >> greet.py
cat > .handoff.toml <<TOML
default_agent = "shell"
[agents.shell]
image = "$image"
TOML
# The repository's own config may pick images and commands only once you trust it.
echo; echo "\$ handoff trust"; "$handoff" trust

echo; echo "\$ handoff run --wait 'sed -i ... greet.py'"
"$handoff" run --wait 'sed -i "s/\"hello, \" + name/(\"hello, \" + name).upper() + \"!\"/; /TODO: greet loudly/d" greet.py && echo agent finished'
echo; echo "\$ handoff list"; "$handoff" list
echo; echo "\$ handoff diff 1"; "$handoff" diff 1
echo; echo "\$ git log --oneline --all"; git log --oneline --all
echo; echo "\$ git status --short   # the user's own work, untouched"; git status --short
branch=$("$handoff" show 1 --json | sed -n 's/.*"branch": "\(.*\)".*/\1/p')
test "$(git show "$branch:greet.py" | grep -c upper)" = 1 || { echo "demo FAILED: the branch lacks the change" >&2; exit 1; }
echo; echo "Demo repository: $demo (task branch $branch)"
