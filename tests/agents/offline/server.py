#!/usr/bin/env python3
"""Tiny scripted model server (stdlib only) for offline agent-CLI tests.

Speaks two protocols on one port:
  * OpenAI Responses API (Codex):   POST .../responses   -> SSE
  * Anthropic Messages API (Claude): POST .../messages    -> SSE
Every request (any method/path) is appended to the JSONL log (--log) with headers+body.

Script (both protocols): if the conversation holds no tool result yet, answer with ONE
tool call that writes a file; otherwise answer with a final text message.

Usage: server.py [--port 0] [--log FILE] [--portfile FILE]
       [--codex-tool auto|exec_command|apply_patch|shell|shell_command] [--patch TEXT] [--minimal]
       [--claude-tool Write|Bash] [--claude-cwd DIR]
       [--text "final text"] [--file hello.txt] [--content "hi"]
  auto = first of shell, shell_command, exec_command, apply_patch offered in the request's tools
  (Codex 0.169 offers exec_command always; apply_patch (custom/freeform) only for catalog models).
  IDs (call_id, toolu_*) are random: Claude Code breaks if a resumed session sees a reused id.
"""
import argparse, json, sys, threading, time, uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ARGS = None
LOCK = threading.Lock()
COUNTER = {"n": 0}


def log(entry):
    with LOCK:
        with open(ARGS.log, "a") as f:
            f.write(json.dumps(entry) + "\n")


def sse(handler, event, data):
    if ARGS.minimal and data.get("type", "").startswith("response.") and data["type"] not in (
            "response.output_item.done", "response.completed"):
        return
    payload = f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()
    handler.wfile.write(payload)
    handler.wfile.flush()


def start_sse(handler):
    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream")
    handler.send_header("Cache-Control", "no-cache")
    handler.send_header("Connection", "close")
    handler.end_headers()


# ---------------------------------------------------------------- Codex (Responses API)
def codex_has_tool_output(body):
    """True if a tool output follows the LAST user message (i.e. this turn already ran a tool)."""
    items = body.get("input", []) or []
    last_user = max((i for i, it in enumerate(items) if isinstance(it, dict)
                     and it.get("type") == "message" and it.get("role") == "user"), default=-1)
    for item in items[last_user + 1:]:
        if isinstance(item, dict) and item.get("type") in (
            "function_call_output", "custom_tool_call_output", "local_shell_call_output"):
            return True
    return False


def codex_tool_names(body):
    names = []
    for t in body.get("tools", []) or []:
        names.append(t.get("name") or t.get("type"))
    return names


def codex_pick_tool(body):
    names = codex_tool_names(body)
    if ARGS.codex_tool != "auto":
        return ARGS.codex_tool
    for pref in ("shell", "shell_command", "exec_command", "apply_patch"):
        if pref in names:
            return pref
    return None


def codex_tool_item(body, call_id):
    tool = codex_pick_tool(body)
    script = f"printf '%s\\n' '{ARGS.content}' > {ARGS.file}"
    if tool == "shell":
        return {"type": "function_call", "name": "shell", "call_id": call_id,
                "arguments": json.dumps({"command": ["bash", "-lc", script]})}
    if tool == "shell_command":
        return {"type": "function_call", "name": "shell_command", "call_id": call_id,
                "arguments": json.dumps({"command": script})}
    if tool == "exec_command":
        return {"type": "function_call", "name": "exec_command", "call_id": call_id,
                "arguments": json.dumps({"cmd": script})}
    if tool == "apply_patch":
        patch = ARGS.patch or (f"*** Begin Patch\n*** Add File: {ARGS.file}\n+{ARGS.content}\n*** End Patch\n")
        # apply_patch is a freeform ("custom") tool in recent Codex; fall back to function
        spec = next((t for t in body.get("tools", []) if (t.get("name") == "apply_patch")), {})
        if spec.get("type") == "custom":
            return {"type": "custom_tool_call", "name": "apply_patch", "call_id": call_id,
                    "input": patch}
        return {"type": "function_call", "name": "apply_patch", "call_id": call_id,
                "arguments": json.dumps({"input": patch})}
    return None


def handle_codex(h, body):
    n = COUNTER["n"]
    resp_id = f"resp_{uuid.uuid4().hex[:24]}"
    start_sse(h)
    sse(h, "response.created", {"type": "response.created",
                                "response": {"id": resp_id, "status": "in_progress"}})
    if not codex_has_tool_output(body) and (item := codex_tool_item(body, f"call_{uuid.uuid4().hex[:24]}")):
        item_id = f"fc_{uuid.uuid4().hex[:24]}"
        item = dict(item, id=item_id)
        if item["type"] == "function_call":
            item["status"] = "completed"
        sse(h, "response.output_item.added", {"type": "response.output_item.added",
                                              "output_index": 0, "item": item})
        sse(h, "response.output_item.done", {"type": "response.output_item.done",
                                             "output_index": 0, "item": item})
    else:
        msg_id = f"msg_{uuid.uuid4().hex[:24]}"
        sse(h, "response.output_item.added", {"type": "response.output_item.added",
            "output_index": 0, "item": {"type": "message", "id": msg_id, "role": "assistant",
                                        "status": "in_progress", "content": []}})
        sse(h, "response.output_text.delta", {"type": "response.output_text.delta",
            "item_id": msg_id, "output_index": 0, "content_index": 0, "delta": ARGS.text})
        sse(h, "response.output_item.done", {"type": "response.output_item.done",
            "output_index": 0, "item": {"type": "message", "id": msg_id, "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": ARGS.text, "annotations": []}]}})
    sse(h, "response.completed", {"type": "response.completed", "response": {
        "id": resp_id, "status": "completed",
        "usage": {"input_tokens": 10, "input_tokens_details": {"cached_tokens": 0},
                  "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 0},
                  "total_tokens": 15}}})


# ---------------------------------------------------------------- Claude (Messages API)
def claude_has_tool_result(body):
    msgs = body.get("messages", [])
    if not msgs:
        return False
    last = msgs[-1]
    content = last.get("content")
    if isinstance(content, list):
        return any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content)
    return False


def handle_claude(h, body):
    n = COUNTER["n"]
    model = body.get("model", "claude-test")
    start_sse(h)
    sse(h, "message_start", {"type": "message_start", "message": {
        "id": f"msg_{uuid.uuid4().hex[:24]}", "type": "message", "role": "assistant", "model": model,
        "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 1}}})
    tool_names = [t.get("name") for t in body.get("tools", []) or []]
    if not claude_has_tool_result(body) and ARGS.claude_tool in tool_names:
        import os
        path = ARGS.file if ARGS.file.startswith("/") else os.path.join(ARGS.claude_cwd, ARGS.file)
        if ARGS.claude_tool == "Bash":
            inp = json.dumps({"command": f"printf '%s\\n' '{ARGS.content}' > {path}",
                              "description": "write file"})
        else:
            inp = json.dumps({"file_path": path, "content": ARGS.content + "\n"})
        sse(h, "content_block_start", {"type": "content_block_start", "index": 0,
            "content_block": {"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:24]}",
                              "name": ARGS.claude_tool, "input": {}}})
        sse(h, "content_block_delta", {"type": "content_block_delta", "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": inp}})
        sse(h, "content_block_stop", {"type": "content_block_stop", "index": 0})
        stop = "tool_use"
    else:
        sse(h, "content_block_start", {"type": "content_block_start", "index": 0,
            "content_block": {"type": "text", "text": ""}})
        sse(h, "content_block_delta", {"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": ARGS.text}})
        sse(h, "content_block_stop", {"type": "content_block_stop", "index": 0})
        stop = "end_turn"
    sse(h, "message_delta", {"type": "message_delta",
        "delta": {"stop_reason": stop, "stop_sequence": None}, "usage": {"output_tokens": 5}})
    sse(h, "message_stop", {"type": "message_stop"})


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        if self.headers.get("Content-Encoding") == "zstd":
            return raw, None
        try:
            return raw, json.loads(raw) if raw else None
        except Exception:
            return raw, None

    def _record(self, raw, body):
        with LOCK:
            COUNTER["n"] += 1
        log({"t": time.time(), "n": COUNTER["n"], "method": self.command, "path": self.path,
             "headers": dict(self.headers), "body": body if body is not None else
             raw[:2000].decode("utf-8", "replace")})

    def do_GET(self):
        raw, body = b"", None
        self._record(raw, body)
        if self.path.rstrip("/").endswith("/models"):
            data = json.dumps({"object": "list", "data": [], "models": []}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self):
        raw, body = self._body()
        self._record(raw, body)
        path = self.path.split("?")[0]
        if path.endswith("/responses") and isinstance(body, dict):
            handle_codex(self, body)
        elif path.endswith("/messages") and isinstance(body, dict):
            handle_claude(self, body)
        elif path.endswith("/count_tokens"):
            data = b'{"input_tokens": 10}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
        self.close_connection = True

    do_PUT = do_POST
    do_HEAD = do_GET


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--log", default="/tmp/agent-research/requests.jsonl")
    p.add_argument("--portfile")
    p.add_argument("--codex-tool", default="auto")
    p.add_argument("--text", default="Done: created hello.txt")
    p.add_argument("--file", default="hello.txt")
    p.add_argument("--content", default="hi")
    p.add_argument("--claude-cwd", default=".")
    p.add_argument("--claude-tool", default="Write", choices=["Write", "Bash"])
    p.add_argument("--patch", default=None, help="Codex apply_patch: raw patch text to send")
    p.add_argument("--minimal", action="store_true",
                   help="Codex: send only output_item.done + response.completed")
    ARGS = p.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", ARGS.port), H)
    port = srv.server_address[1]
    if ARGS.portfile:
        with open(ARGS.portfile, "w") as f:
            f.write(str(port))
    print(f"listening on 127.0.0.1:{port}", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
