"""An OpenAI-compatible chat-completions server on a real local socket, scripted per test.

Tests queue replies (``stub.script(...)``) or set a function (``stub.responder``) that decides
each reply from the request body. Every request body is recorded in ``stub.requests``; the
server also counts requests in flight so that tests can check bounded concurrency.

Replies cover what real providers do: text content, tool calls (instructor's TOOLS mode),
OpenAI-format logprobs, usage, 429 with Retry-After, 5xx, slow answers (client timeouts),
dropped connections, malformed or truncated bodies, refusals (OpenAI's ``refusal`` field,
``content_filter`` stops) and answers cut off at the token limit (``finish_reason: length``).
"""

from __future__ import annotations

import json
import math
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CHAT_PATHS = ("/v1/chat/completions", "/chat/completions")


@dataclass
class StubReply:
    """One scripted answer of the stub.

    ``logprobs`` lists token positions; each maps token -> probability, the first key being
    the token the model chose there. Without ``content`` the chosen tokens make the content.
    ``arguments`` become a tool call when the request offers tools, else the content (JSON).
    """

    content: str | None = None
    arguments: dict[str, Any] | str | None = None
    logprobs: list[dict[str, float]] | None = None
    prompt_tokens: int = 20
    completion_tokens: int = 5
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    drop: bool = False
    raw_body: bytes | None = None
    refusal: str | None = None
    finish_reason: str | None = None

    @classmethod
    def verdict(
        cls, label: str, rationale: str = "stub rationale", confidence: float | None = None
    ) -> StubReply:
        """A structured verdict (tool call or JSON content)."""
        arguments: dict[str, Any] = {"rationale": rationale, "label": label}
        if confidence is not None:
            arguments["confidence"] = confidence
        return cls(arguments=arguments)

    @classmethod
    def label_first(
        cls, distribution: dict[str, float], rationale: str = "stub rationale"
    ) -> StubReply:
        """Plain text starting with the most likely label, with logprobs at that position."""
        chosen = max(distribution, key=lambda token: distribution[token])
        rest = {token: p for token, p in distribution.items() if token != chosen}
        return cls(
            content=f"{chosen}\nWhy: {rationale}",
            logprobs=[{chosen: distribution[chosen], **rest}, {"\n": 1.0}],
        )

    @classmethod
    def rate_limited(cls, retry_after_s: float) -> StubReply:
        """A 429 asking the client to wait."""
        return cls(status=429, headers={"Retry-After": f"{retry_after_s:g}"})

    @classmethod
    def server_error(cls, status: int = 500) -> StubReply:
        """A 5xx error."""
        return cls(status=status)

    @classmethod
    def refused(cls, text: str = "I'm sorry, but I can't help with that.") -> StubReply:
        """A refusal as OpenAI sends it: no content, the reason in ``message.refusal``."""
        return cls(refusal=text, finish_reason="stop")

    @classmethod
    def truncated(cls, text: str = '{"rationale": "The customer was help') -> StubReply:
        """An answer cut off at ``max_tokens``: partial text, ``finish_reason: length``."""
        return cls(content=text, finish_reason="length")


class StubLLM:
    """The running stub: its URL, its script and what it received."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.responder: Callable[[dict[str, Any]], StubReply] | None = None
        self.in_flight = 0
        self.max_in_flight = 0
        self._script: deque[StubReply] = deque()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        # Slow handlers must not hold up shutdown at the end of a test.
        self._server.block_on_close = False
        # A short poll interval keeps stop() (and each test's teardown) fast.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        """Base URL; litellm's api_base is ``url + "/v1"``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> StubLLM:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def script(self, *replies: StubReply) -> None:
        """Queue replies, answered in order before the responder is asked."""
        with self._lock:
            self._script.extend(replies)

    def next_reply(self, body: dict[str, Any]) -> StubReply:
        """Record a request and pick its reply."""
        with self._lock:
            self.requests.append(body)
            if self._script:
                return self._script.popleft()
        if self.responder is not None:
            return self.responder(body)
        return StubReply(status=500, raw_body=b'{"error": {"message": "stub: nothing scripted"}}')

    def enter(self) -> None:
        """Count a request in flight."""
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        """Count a request done."""
        with self._lock:
            self.in_flight -= 1


def _make_handler(stub: StubLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib name)
            pass

        def do_POST(self) -> None:  # noqa: N802 (stdlib name)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if self.path not in CHAT_PATHS:
                self._send(404, {"error": {"message": f"no route {self.path}"}})
                return
            body = json.loads(raw or b"{}")
            stub.paths.append(self.path)
            stub.enter()
            try:
                self._answer(stub.next_reply(body), body)
            finally:
                stub.leave()

        def _answer(self, reply: StubReply, body: dict[str, Any]) -> None:
            if reply.delay_s:
                time.sleep(reply.delay_s)
            if reply.drop:
                # Close without a byte of response, as a crashed upstream would.
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if reply.raw_body is not None:
                self._send(reply.status, reply.raw_body, reply.headers)
            elif reply.status != 200:
                error = {"message": f"stub error {reply.status}", "type": "stub_error"}
                self._send(reply.status, {"error": error}, reply.headers)
            else:
                self._send(200, completion_body(reply, body), reply.headers)

        def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout); nothing left to tell it

    return Handler


def completion_body(reply: StubReply, request: dict[str, Any]) -> dict[str, Any]:
    """The chat.completion JSON for a successful reply."""
    message: dict[str, Any] = {"role": "assistant", "content": reply.content}
    finish_reason = "stop"
    arguments = reply.arguments
    if arguments is not None:
        text = arguments if isinstance(arguments, str) else json.dumps(arguments)
        tools = request.get("tools") or []
        if tools:
            name = tools[0]["function"]["name"]
            message["tool_calls"] = [
                {
                    "id": "call_stub",
                    "type": "function",
                    "function": {"name": name, "arguments": text},
                }
            ]
            finish_reason = "tool_calls"
        else:
            message["content"] = text
    if message["content"] is None and reply.logprobs and "tool_calls" not in message:
        message["content"] = "".join(next(iter(position)) for position in reply.logprobs)
    if reply.refusal is not None:
        message["refusal"] = reply.refusal
    finish_reason = reply.finish_reason or finish_reason
    choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": finish_reason}
    if reply.logprobs is not None:
        choice["logprobs"] = {"content": [_position(position) for position in reply.logprobs]}
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model", "stub-judge"),
        "choices": [choice],
        "usage": {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        },
    }


def _position(position: dict[str, float]) -> dict[str, Any]:
    tokens = [
        {"token": token, "logprob": math.log(max(p, 1e-12)), "bytes": list(token.encode())}
        for token, p in position.items()
    ]
    chosen = tokens[0]
    return {**chosen, "top_logprobs": tokens}
