"""The tests' stub LLM replies, served by uvicorn in a process of its own, with a fixed latency.

Usage::

    python benchmarks/_stub_server.py --latency-ms 100

Prints ``ready <url>`` once it listens, then serves until killed. Every answer is the stub's
label-first reply with logprobs (``tests/stub_llm.py``: ``StubReply``, ``completion_body``);
about one in ten prompts (chosen by a hash of the prompt, so the service and a direct litellm
loop see the same verdicts) gets a low confidence, which the policy escalates.

Why not ``StubLLM`` itself: it starts a thread per request, and on a loaded 2-core machine
each thread start waits for the scheduler, which capped it near 100 requests/s, far below
the 640/s that C = 64, L = 100 ms needs. An asyncio server sleeps ``L`` without a thread and
keeps connections alive, as a real provider's endpoint does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import zlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.stub_llm import CHAT_PATHS, StubReply, completion_body  # noqa: E402 (path set-up)

CONFIDENT = {"yes": 0.97, "no": 0.03}
UNSURE = {"yes": 0.6, "no": 0.4}

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def verdict_for(body: dict[str, Any]) -> dict[str, float]:
    """The label distribution for a request: unsure for about 10% of prompts."""
    prompt = json.dumps(body.get("messages", []), sort_keys=True)
    return UNSURE if zlib.crc32(prompt.encode()) % 10 == 0 else CONFIDENT


def make_app(latency_s: float) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """An ASGI app answering chat completions after ``latency_s``."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"] not in CHAT_PATHS:
            status, payload = 404, {"error": {"message": f"no route {scope['path']}"}}
        else:
            body = json.loads(raw or b"{}")
            await asyncio.sleep(latency_s)
            status, payload = 200, completion_body(StubReply.label_first(verdict_for(body)), body)
        data = json.dumps(payload).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(data))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})

    return app


def main() -> int:
    """Serve until killed."""
    import uvicorn

    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=100.0)
    args = parser.parse_args()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4096)  # before "ready": a client may connect while uvicorn starts
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(
        make_app(args.latency_ms / 1000),
        log_level="warning",
        access_log=False,
        backlog=4096,
        timeout_keep_alive=60,
    )
    server = uvicorn.Server(config)
    print(f"ready http://{host}:{port}", flush=True)
    server.run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
