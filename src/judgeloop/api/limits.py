"""An ASGI middleware that guards what reaches the handlers.

It refuses bodies over a size limit with 413 and, before any handler runs, JSON bodies,
query strings and paths that the parser or the databases would choke on with a 422 that
names the place (see ``json_checks``).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from judgeloop.api.json_checks import MAX_JSON_DEPTH, json_body_problems, text_problem


def _is_json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            media_type: bytes = value.partition(b";")[0].strip().lower()
            return media_type == b"application/json" or media_type.endswith(b"+json")
    return False


def url_problems(scope: Scope) -> list[dict[str, Any]]:
    """422 entries for NUL characters or lone surrogates in the path or the query string."""
    problems = []
    path_problem = text_problem(scope.get("path", ""))
    if path_problem:
        problems.append({"loc": ["path"], "msg": path_problem, "type": "string_unstorable"})
    query = scope.get("query_string", b"").decode("latin-1")
    if "%00" in query or "\x00" in query:
        for name, value in parse_qsl(query, keep_blank_values=True):
            problem = text_problem(name) or text_problem(value)
            if problem:
                problems.append(
                    {"loc": ["query", name], "msg": problem, "type": "string_unstorable"}
                )
    return problems


class BodySizeLimitMiddleware:
    """Answer 413 when Content-Length, or the bytes actually sent, exceed ``max_bytes``.

    JSON bodies are read here in full (they are bounded by the limit) and checked with
    ``json_body_problems``; other bodies of declared length stream through untouched.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, max_depth: int = MAX_JSON_DEPTH) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the declared length and the URL; read JSON and undeclared bodies first."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problems = url_problems(scope)
        if problems:
            await _answer(send, 422, {"detail": problems})
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        is_json = _is_json(scope)
        if declared is not None and not is_json:
            await self.app(scope, receive, send)
            return
        # A chunked body declares no length: read it here, at most max_bytes, then replay it.
        # (An error raised while the app reads would reach the client as a 400, not a 413.)
        messages: list[Message] = []
        received = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                await self._refuse(send)
                return
            if not message.get("more_body", False):
                break
        if is_json:
            body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
            problems = json_body_problems(body, self.max_depth)
            if problems:
                await _answer(send, 422, {"detail": problems})
                return

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        detail = f"request body larger than the limit of {self.max_bytes} bytes"
        await _answer(send, 413, {"detail": detail})


async def _answer(send: Send, status: int, content: dict[str, Any]) -> None:
    body = json.dumps(content).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
