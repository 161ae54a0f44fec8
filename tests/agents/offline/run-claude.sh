#!/bin/bash
# Run the real Claude Code CLI offline (loopback-only network namespace) against server.py.
# usage: run-claude.sh WORKDIR HOME OUT.jsonl PROMPT [claude args...]
# env: SERVER_ARGS, WRAP (e.g. strace ...), TIMEOUT, CLAUDE (binary)
set -u
WORK=$1; H=$2; OUT=$3; PROMPT=$4; shift 4
export CLAUDE=${CLAUDE:-/tmp/agent-research/claude-bin}
export WORK H OUT PROMPT SERVER_ARGS=${SERVER_ARGS:-} WRAP=${WRAP:-} TIMEOUT=${TIMEOUT:-120}
mkdir -p "$H"
exec unshare -n bash -c '
  ip link set lo up
  python3 /tmp/agent-research/server.py --port 18081 --log "$H/requests.jsonl" --claude-cwd "$WORK" $SERVER_ARGS &
  SP=$!
  for i in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/18081) 2>/dev/null && break; sleep 0.1; done
  cd "$WORK"
  start=$(date +%s.%N)
  HOME="$H" ANTHROPIC_BASE_URL=http://127.0.0.1:18081 ANTHROPIC_API_KEY=sk-ant-test \
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 DISABLE_AUTOUPDATER=1 IS_SANDBOX=1 \
    timeout $TIMEOUT $WRAP "$CLAUDE" -p "$PROMPT" "$@" < /dev/null > "$OUT" 2> "$H/stderr.txt"
  rc=$?
  echo "claude rc=$rc elapsed=$(echo "$(date +%s.%N) - $start" | bc)s"
  kill $SP
' bash "$@"
