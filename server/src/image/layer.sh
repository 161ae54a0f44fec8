# Run as root while Handoff builds its image on a dev container's image
# (docs/environments.md): checks that the image can run the agent, and puts the agent's
# CLI (already copied to /opt/agent) on PATH. A line starting with "handoff-fit:" says
# why the image cannot run it.
fail() { echo "handoff-fit: $*"; exit 1; }
probe() {
  "$1" --version >/dev/null 2>&1 ||
    fail "\`$1 --version\` fails in it: $("$1" --version 2>&1 | tail -n 3 | tr '\n' ' ')"
}
mkdir -p /home/agent /workspace /usr/local/bin ||
  fail "cannot make /home/agent, /workspace and /usr/local/bin in it"
chmod 1777 /home/agent /workspace
if command -v git >/dev/null 2>&1; then
  git config --system --add safe.directory '*' || true
fi
@AGENT@
rm -f /tmp/handoff-fit.sh
