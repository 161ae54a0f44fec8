#!/bin/bash
# Run the real `codex exec` offline (loopback-only network namespace) against server.py.
# usage: run-codex.sh WORKDIR CODEX_HOME OUT.jsonl PROMPT [codex exec args...]
# env: SERVER_ARGS="..." extra args for server.py
set -u
WORK=$1; CH=$2; OUT=$3; PROMPT=$4; shift 4
export CODEX=/tmp/agent-research/codex/node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex
export CODEX_HOME=$CH WORK OUT PROMPT SERVER_ARGS=${SERVER_ARGS:-} WRAP=${WRAP:-} TIMEOUT=${TIMEOUT:-120}
mkdir -p "$CH"
exec unshare -n bash -c '
  ip link set lo up
  python3 /tmp/agent-research/server.py --port 18080 --log "$CODEX_HOME/requests.jsonl" $SERVER_ARGS &
  SP=$!
  for i in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/18080) 2>/dev/null && break; sleep 0.1; done
  cd "$WORK"
  start=$(date +%s.%N)
  MOCK_API_KEY=sk-test timeout ${TIMEOUT:-120} $WRAP "$CODEX" exec "$@" "$PROMPT" < /dev/null > "$OUT" 2> "$CODEX_HOME/stderr.txt"
  rc=$?
  echo "codex rc=$rc elapsed=$(echo "$(date +%s.%N) - $start" | bc)s"
  kill $SP
' bash "$@"
