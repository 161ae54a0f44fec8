#!/usr/bin/env python3
"""Scripted model server for the real-agent tests (stdlib only, 127.0.0.1 only).

Answers the Anthropic Messages API (Claude Code) and the OpenAI Responses API (Codex)
with server-sent events, following a fixed script per turn:

  * the newest user instruction that says `create FILE containing TEXT` asks for a file;
  * if no tool result follows that instruction yet, the answer is ONE tool call that
    writes TEXT (and a newline) to FILE: Claude's `Write` tool, Codex's `exec_command`;
  * otherwise the answer is the final text `Done: created FILE`.

An instruction that says `slowly` is answered after 2 seconds, for tests that watch a
running agent. A request whose API key is `sk-invalid` gets a 401 authentication error, and one whose
key is `sk-rate-limited` a 429 rate-limit error, as the real APIs send them. Every request is appended to the JSON-lines log (--log).

Usage: model_server.py --portfile FILE --log FILE [--port 0]
"""
import argparse
import json
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ARGS = None
LOCK = threading.Lock()
INSTRUCTION = re.compile(r"create (\S+) containing (.+?)(?:\.?\s*$|\.\s)", re.M)
INVALID_KEY = "sk-invalid"
RATE_LIMITED_KEY = "sk-rate-limited"


def log(entry):
    with LOCK:
        with open(ARGS.log, "a") as f:
            f.write(json.dumps(entry) + "\n")


def instruction_in(texts):
    """(file, content) of the last `create FILE containing TEXT` in texts, or None."""
    found = None
    for text in texts:
        for m in INSTRUCTION.finditer(text):
            found = (m.group(1), m.group(2).strip())
    return found


def sse(handler, event, data):
    handler.wfile.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())
    handler.wfile.flush()


def start_sse(handler):
    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream")
    handler.send_header("Cache-Control", "no-cache")
    handler.send_header("Connection", "close")
    handler.end_headers()


def send_json(handler, status, data):
    raw = json.dumps(data).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(raw)))
    handler.end_headers()
    handler.wfile.write(raw)


# ------------------------------------------------------------- Codex (Responses API)
def codex_turn(body):
    """(instruction, has_tool_output) for the newest user message holding one."""
    items = [i for i in (body.get("input") or []) if isinstance(i, dict)]
    for idx in range(len(items) - 1, -1, -1):
        item = items[idx]
        if item.get("type") != "message" or item.get("role") != "user":
            continue
        texts = [c.get("text", "") for c in item.get("content") or [] if isinstance(c, dict)]
        found = instruction_in(texts)
        if found:
            later = items[idx + 1:]
            done = any(i.get("type") in ("function_call_output", "custom_tool_call_output")
                       for i in later)
            return found, done
    return None, False


def handle_codex(h, body):
    found, done = codex_turn(body)
    resp_id = f"resp_{uuid.uuid4().hex[:24]}"
    start_sse(h)
    sse(h, "response.created", {"type": "response.created",
                                "response": {"id": resp_id, "status": "in_progress"}})
    if found and not done:
        path, content = found
        item = {"type": "function_call", "name": "exec_command", "status": "completed",
                "id": f"fc_{uuid.uuid4().hex[:24]}", "call_id": f"call_{uuid.uuid4().hex[:24]}",
                "arguments": json.dumps({"cmd": f"printf '%s\\n' '{content}' > {path}"})}
    else:
        text = f"Done: created {found[0]}" if found else "Nothing to do."
        item = {"type": "message", "id": f"msg_{uuid.uuid4().hex[:24]}", "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": text, "annotations": []}]}
    sse(h, "response.output_item.added", {"type": "response.output_item.added",
                                          "output_index": 0, "item": item})
    sse(h, "response.output_item.done", {"type": "response.output_item.done",
                                         "output_index": 0, "item": item})
    sse(h, "response.completed", {"type": "response.completed", "response": {
        "id": resp_id, "status": "completed",
        "usage": {"input_tokens": 10, "input_tokens_details": {"cached_tokens": 0},
                  "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 0},
                  "total_tokens": 15}}})


# ------------------------------------------------------------ Claude (Messages API)
def claude_texts(message):
    content = message.get("content")
    if isinstance(content, str):
        return [content]
    return [b.get("text", "") for b in content or [] if isinstance(b, dict) and b.get("type") == "text"]


def claude_turn(body):
    msgs = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    for idx in range(len(msgs) - 1, -1, -1):
        if msgs[idx].get("role") != "user":
            continue
        found = instruction_in(claude_texts(msgs[idx]))
        if found:
            done = any(isinstance(b, dict) and b.get("type") == "tool_result"
                       for m in msgs[idx:] if isinstance(m.get("content"), list)
                       for b in m["content"])
            return found, done
    return None, False


def handle_claude(h, body):
    found, done = claude_turn(body)
    if "slowly" in json.dumps(body.get("messages", [])):
        time.sleep(2)
    cwd = ARGS.claude_cwd
    start_sse(h)
    sse(h, "message_start", {"type": "message_start", "message": {
        "id": f"msg_{uuid.uuid4().hex[:24]}", "type": "message", "role": "assistant",
        "model": body.get("model", "claude-test"), "content": [], "stop_reason": None,
        "stop_sequence": None, "usage": {"input_tokens": 10, "output_tokens": 1}}})
    tools = [t.get("name") for t in body.get("tools") or []]
    if found and not done and "Write" in tools:
        path, content = found
        # Claude Code's tools take absolute paths; the newest environment note (system
        # prompt or a later "Environment update" message) names the cwd.
        pattern = r"(?i)working directory: (/[^\\\s\"]*)"
        dirs = re.findall(pattern, json.dumps(body.get("system", ""))) + \
            re.findall(pattern, json.dumps(body.get("messages", [])))
        base = dirs[-1] if dirs else cwd
        inp = json.dumps({"file_path": path if path.startswith("/") else f"{base}/{path}",
                          "content": content + "\n"})
        sse(h, "content_block_start", {"type": "content_block_start", "index": 0,
            "content_block": {"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:24]}",
                              "name": "Write", "input": {}}})
        sse(h, "content_block_delta", {"type": "content_block_delta", "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": inp}})
        stop = "tool_use"
    else:
        text = f"Done: created {found[0]}" if found else "Nothing to do."
        sse(h, "content_block_start", {"type": "content_block_start", "index": 0,
            "content_block": {"type": "text", "text": ""}})
        sse(h, "content_block_delta", {"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": text}})
        stop = "end_turn"
    sse(h, "content_block_stop", {"type": "content_block_stop", "index": 0})
    sse(h, "message_delta", {"type": "message_delta",
        "delta": {"stop_reason": stop, "stop_sequence": None}, "usage": {"output_tokens": 5}})
    sse(h, "message_stop", {"type": "message_stop"})


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        log({"method": "GET", "path": self.path})
        if self.path.split("?")[0].rstrip("/").endswith("/models"):
            send_json(self, 200, {"object": "list", "data": [], "models": []})
        else:
            send_json(self, 404, {"error": "not found"})

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        path = self.path.split("?")[0]
        key = self.headers.get("x-api-key") or \
            (self.headers.get("Authorization") or "").removeprefix("Bearer ")
        log({"method": "POST", "path": path, "key": key, "key_is_invalid": key == INVALID_KEY,
             "key_is_rate_limited": key == RATE_LIMITED_KEY, "body": body})
        if key == RATE_LIMITED_KEY and path.endswith(("/messages", "/responses")):
            if path.endswith("/messages"):
                send_json(self, 429, {"type": "error", "error": {"type": "rate_limit_error",
                    "message": "Number of request tokens has exceeded your per-minute rate limit"}})
            else:
                send_json(self, 429, {"error": {"type": "rate_limit_exceeded",
                    "code": "rate_limit_exceeded", "message": "Rate limit reached for requests"}})
        elif key == INVALID_KEY and path.endswith(("/messages", "/responses")):
            if path.endswith("/messages"):
                send_json(self, 401, {"type": "error", "error": {
                    "type": "authentication_error", "message": "invalid x-api-key"}})
            else:
                send_json(self, 401, {"error": {"type": "invalid_request_error",
                    "code": "invalid_api_key", "message": "Incorrect API key provided"}})
        elif path.endswith("/responses") and isinstance(body, dict):
            handle_codex(self, body)
        elif path.endswith("/messages") and isinstance(body, dict):
            handle_claude(self, body)
        elif path.endswith("/count_tokens"):
            send_json(self, 200, {"input_tokens": 10})
        else:
            send_json(self, 404, {"error": "not found"})
        self.close_connection = True


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--portfile", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--claude-cwd", default="/workspace")
    ARGS = p.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    with open(ARGS.portfile + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    import os
    os.replace(ARGS.portfile + ".tmp", ARGS.portfile)
    server.serve_forever()


if __name__ == "__main__":
    main()
