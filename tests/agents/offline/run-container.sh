#!/bin/bash
# Run a real agent CLI inside a container whose network namespace has ONLY loopback.
# A holder container (--network none) owns the netns; server.py runs on the host but inside
# that netns (nsenter -n); the agent container joins it with --network container:HOLDER.
# usage: run-container.sh codex|claude WORKDIR AGENTHOME OUT.jsonl PROMPT [extra CLI args...]
# env: SERVER_ARGS, IMAGE (default agent-research/clis:test)
set -u
KIND=$1; WORK=$2; AHOME=$3; OUT=$4; PROMPT=$5; shift 5
IMAGE=${IMAGE:-agent-research/clis:test}
HOLDER=ar-net-$$
mkdir -p "$AHOME/.codex"; chown -R 1000:1000 "$WORK" "$AHOME"
docker run -d --rm --pull never --network none --name $HOLDER "$IMAGE" sleep 300 >/dev/null
PID=$(docker inspect -f '{{.State.Pid}}' $HOLDER)
nsenter -t "$PID" -n ip -o link show | awk '{print "holder netns link:", $2}'
if [ $KIND = codex ]; then PORT=18080; else PORT=18081; fi
nsenter -t "$PID" -n python3 /tmp/agent-research/server.py --port $PORT --log "$AHOME/requests.jsonl" \
  --claude-cwd /workspace ${SERVER_ARGS:-} > /dev/null 2>&1 &
SP=$!
for i in $(seq 50); do nsenter -t "$PID" -n bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT" 2>/dev/null && break; sleep 0.1; done
COMMON=(${EXTRA_DOCKER_ARGS:-} --rm --pull never --network container:$HOLDER --user 1000:1000
  --read-only --tmpfs /tmp:mode=1777 -e HOME=/home/agent -v "$AHOME":/home/agent
  -v "$WORK":/workspace -w /workspace
  -e GIT_AUTHOR_NAME=agent -e GIT_AUTHOR_EMAIL=agent@example.invalid
  -e GIT_COMMITTER_NAME=agent -e GIT_COMMITTER_EMAIL=agent@example.invalid
  --memory 2g --pids-limit 512)
start=$(date +%s.%N)
if [ $KIND = codex ]; then
  docker run "${COMMON[@]}" -e CODEX_HOME=/home/agent/.codex -e MOCK_API_KEY=sk-test -i "$IMAGE" \
    /usr/local/bin/codex exec --json ${CODEX_SANDBOX_FLAGS:---dangerously-bypass-approvals-and-sandbox} \
    -c model='"gpt-5.5"' -c model_provider='"mock"' \
    -c "model_providers.mock={name=\"Mock\", base_url=\"http://127.0.0.1:$PORT/v1\", env_key=\"MOCK_API_KEY\", wire_api=\"responses\", request_max_retries=0, stream_max_retries=0}" \
    -c check_for_update_on_startup=false -c analytics.enabled=false -c feedback.enabled=false \
    -c otel.exporter='"none"' -c otel.trace_exporter='"none"' -c otel.metrics_exporter='"none"' \
    --disable plugins --disable remote_plugin --disable apps --disable shell_snapshot \
    --disable unbounded_connection_retries \
    "$@" "$PROMPT" < /dev/null > "$OUT" 2> "$AHOME/stderr.txt"
else
  docker run "${COMMON[@]}" -e ANTHROPIC_BASE_URL=http://127.0.0.1:$PORT -e ANTHROPIC_API_KEY=sk-ant-test \
    -e CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 -e DISABLE_AUTOUPDATER=1 -i "$IMAGE" \
    /usr/local/bin/claude -p "$PROMPT" --output-format stream-json --verbose --dangerously-skip-permissions \
    "$@" < /dev/null > "$OUT" 2> "$AHOME/stderr.txt"
fi
rc=$?
echo "$KIND rc=$rc elapsed=$(echo "$(date +%s.%N) - $start" | bc)s"
kill $SP; docker rm -f $HOLDER >/dev/null
