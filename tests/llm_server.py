"""A real OpenAI-compatible chat server for the tests: it answers POST /v1/chat/completions with scripted replies
(the LLM client and the planner are tested against it over HTTP, never with a mocked client)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ScriptedServer:
    """POST /v1/chat/completions answers with the next scripted reply: a str (the assistant's content), or a dict
    with "content", "status" (default 200), "body" (raw body instead of an OpenAI reply), "sleep" (seconds first),
    or a callable(request) returning one of those. Requests (json + headers) are kept in `requests`."""

    def __init__(self, script):
        self.script = list(script)
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                server.requests.append({"path": self.path, "json": body, "headers": dict(self.headers)})
                step = server.script.pop(0) if server.script else {"status": 500, "body": "script exhausted"}
                if callable(step):
                    step = step(body)
                if isinstance(step, str):
                    step = {"content": step}
                time.sleep(step.get("sleep", 0))
                if self.path != "/v1/chat/completions":
                    step = {"status": 404, "body": "not found"}
                raw = step.get("body")
                if raw is None:
                    raw = json.dumps({"id": "x", "object": "chat.completion", "model": body.get("model"),
                                      "choices": [{"index": 0, "finish_reason": "stop",
                                                   "message": {"role": "assistant", "content": step["content"]}}],
                                      "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}})
                data = raw.encode()
                try:
                    self.send_response(step.get("status", 200))
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (timeout) before the reply

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_port}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
