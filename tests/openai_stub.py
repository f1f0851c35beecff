"""A local OpenAI-compatible HTTP server for tests: the protocol is real, the model is not.

`/v1/embeddings` returns deterministic bag-of-words vectors (each word hashed into one
of 64 dimensions), so texts that share words are close, as with a real model.
`/v1/chat/completions` answers from a script: each queued `Reply` is used once, in
order (an answer, an HTTP error, or a delay longer than the client waits); when the
queue is empty, `default` answers. Every request is recorded so tests can check what
the client sent.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DIM = 64


def embed(text: str) -> list[float]:
    vector = [0.0] * DIM
    for word in re.findall(r"\w+", text.lower()):
        vector[int(hashlib.md5(word.encode()).hexdigest(), 16) % DIM] += 1.0
    return vector


@dataclass
class Reply:
    content: str = ""
    status: int = 200
    delay: float = 0.0
    body: dict[str, Any] | None = None  # sent as is instead of a chat completion (a broken proxy, say)


class OpenAIStub:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.replies: deque[Reply] = deque()
        self.default = Reply(content='{"error": "no scripted reply"}')
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
                if self.path == "/v1/embeddings":
                    self._json(200, stub._embeddings(body))
                elif self.path == "/v1/chat/completions":
                    reply = stub.replies.popleft() if stub.replies else stub.default
                    time.sleep(reply.delay)
                    if reply.body is not None:
                        self._json(reply.status, reply.body)
                    elif reply.status != 200:
                        self._json(reply.status, {"error": {"message": "scripted failure", "type": "server_error"}})
                    else:
                        self._json(200, stub._chat(body, reply.content))
                else:
                    self.send_error(404)

            def _json(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests if r["path"] == "/v1/chat/completions"]

    @staticmethod
    def _embeddings(body: dict[str, Any]) -> dict[str, Any]:
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        return {
            "object": "list",
            "model": body["model"],
            "data": [{"object": "embedding", "index": i, "embedding": embed(t)} for i, t in enumerate(inputs)],
            "usage": {"prompt_tokens": 0, "total_tokens": 0},
        }

    @staticmethod
    def _chat(body: dict[str, Any], content: str) -> dict[str, Any]:
        return {
            "id": "chatcmpl-stub",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
        }

    def __enter__(self) -> "OpenAIStub":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
