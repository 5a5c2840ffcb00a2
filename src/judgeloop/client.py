"""A Python client for pipelines and agents: post sessions, ask a judge, gate an action.

``JudgeloopClient`` is synchronous, ``AsyncJudgeloopClient`` the same on asyncio; both speak
to a judgeloop server over httpx with an API key::

    with JudgeloopClient("http://127.0.0.1:8000", api_key="jl_...") as client:
        gate = client.open_gate("issue_refund", {"amount": 180}, state={"messages": [...]})
        gate = client.wait_for_gate(gate["id"], timeout=600)
        if gate["status"] in ("approved", "modified"):
            ...
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

import httpx

__all__ = [
    "DECIDED",
    "AsyncJudgeloopClient",
    "GateTimeoutError",
    "JudgeloopClient",
    "JudgeloopError",
]

DECIDED = ("approved", "rejected", "modified", "expired")
_MAX_WAIT_PER_REQUEST = 60.0
JSON = dict[str, Any]


class JudgeloopError(RuntimeError):
    """The server refused a request; ``status_code`` and the server's ``detail`` say why."""

    def __init__(self, status_code: int, detail: Any, method: str, url: str) -> None:
        """Keep the status and the server's explanation."""
        self.status_code = status_code
        self.detail = detail
        super().__init__(f"{method} {url} -> {status_code}: {_describe(detail)}")


class GateTimeoutError(TimeoutError):
    """A gate was still pending when the client stopped waiting."""

    def __init__(self, gate: JSON) -> None:
        """Keep the gate as last seen."""
        self.gate = gate
        super().__init__(f"gate {gate.get('id')} still pending")


def _describe(detail: Any) -> str:
    if isinstance(detail, list):
        parts = []
        for error in detail:
            if isinstance(error, dict):
                location = ".".join(str(part) for part in error.get("loc", ()))
                parts.append(f"{location}: {error.get('msg')}" if location else str(error))
            else:
                parts.append(str(error))
        return "; ".join(parts)
    return str(detail)


def _checked(response: httpx.Response) -> Any:
    if response.is_success:
        return response.json() if response.content else None
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        detail = response.text
    raise JudgeloopError(
        response.status_code, detail, response.request.method, str(response.request.url)
    )


def _gate_body(
    action: str, arguments: Mapping[str, Any], state: Mapping[str, Any] | None, callback: str | None
) -> JSON:
    body: JSON = {"action": {"name": action, "arguments": dict(arguments)}}
    body["state"] = dict(state or {})
    if callback is not None:
        body["callback_url"] = callback
    return body


def _headers(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


class JudgeloopClient:
    """Synchronous client; use as a context manager or call ``close()``."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """Connect to ``base_url`` presenting ``api_key``."""
        self._http = httpx.Client(
            base_url=base_url,
            headers=_headers(api_key),
            timeout=timeout,
            transport=transport,
        )

    def __enter__(self) -> JudgeloopClient:
        """Use as a context manager."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close the connection pool."""
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def post_sessions(self, sessions: Sequence[Mapping[str, Any]], *, wait: bool = False) -> JSON:
        """Store sessions for the pipeline; with ``wait``, return their decisions too."""
        response = self._http.post("/v1/sessions", json=list(sessions), params={"wait": wait})
        result: JSON = _checked(response)
        return result

    def judge(self, judge: str, session: Mapping[str, Any]) -> JSON:
        """Score one session with a judge (version id or name) and apply the policy."""
        result: JSON = _checked(
            self._http.post("/v1/judge", json={"judge": judge, "session": dict(session)})
        )
        return result

    def open_gate(
        self,
        action: str,
        arguments: Mapping[str, Any],
        state: Mapping[str, Any] | None = None,
        callback_url: str | None = None,
    ) -> JSON:
        """Ask before acting; the answer's status is approved or pending."""
        body = _gate_body(action, arguments, state, callback_url)
        result: JSON = _checked(self._http.post("/v1/gates", json=body))
        return result

    def get_gate(self, gate_id: int, *, wait: float = 0) -> JSON:
        """The gate now, or once decided when ``wait`` (seconds, at most 60) allows."""
        result: JSON = _checked(
            self._http.get(
                f"/v1/gates/{gate_id}",
                params={"wait": wait},
                timeout=wait + 30,
            )
        )
        return result

    def wait_for_gate(self, gate_id: int, timeout: float) -> JSON:
        """Long-poll until the gate is decided; GateTimeoutError when ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            gate = self.get_gate(gate_id, wait=max(0.0, min(left, _MAX_WAIT_PER_REQUEST)))
            if gate["status"] in DECIDED:
                return gate
            if time.monotonic() >= deadline:
                raise GateTimeoutError(gate)


class AsyncJudgeloopClient:
    """The same client for asyncio; use ``async with`` or ``await aclose()``."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """Connect to ``base_url`` presenting ``api_key``."""
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers=_headers(api_key),
            timeout=timeout,
            transport=transport,
        )

    async def __aenter__(self) -> AsyncJudgeloopClient:
        """Use as an async context manager."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close the connection pool."""
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def post_sessions(
        self, sessions: Sequence[Mapping[str, Any]], *, wait: bool = False
    ) -> JSON:
        """Store sessions for the pipeline; with ``wait``, return their decisions too."""
        response = await self._http.post("/v1/sessions", json=list(sessions), params={"wait": wait})
        result: JSON = _checked(response)
        return result

    async def judge(self, judge: str, session: Mapping[str, Any]) -> JSON:
        """Score one session with a judge (version id or name) and apply the policy."""
        response = await self._http.post(
            "/v1/judge", json={"judge": judge, "session": dict(session)}
        )
        result: JSON = _checked(response)
        return result

    async def open_gate(
        self,
        action: str,
        arguments: Mapping[str, Any],
        state: Mapping[str, Any] | None = None,
        callback_url: str | None = None,
    ) -> JSON:
        """Ask before acting; the answer's status is approved or pending."""
        body = _gate_body(action, arguments, state, callback_url)
        result: JSON = _checked(await self._http.post("/v1/gates", json=body))
        return result

    async def get_gate(self, gate_id: int, *, wait: float = 0) -> JSON:
        """The gate now, or once decided when ``wait`` (seconds, at most 60) allows."""
        response = await self._http.get(
            f"/v1/gates/{gate_id}", params={"wait": wait}, timeout=wait + 30
        )
        result: JSON = _checked(response)
        return result

    async def wait_for_gate(self, gate_id: int, timeout: float) -> JSON:
        """Long-poll until the gate is decided; GateTimeoutError when ``timeout`` passes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            left = deadline - loop.time()
            gate = await self.get_gate(gate_id, wait=max(0.0, min(left, _MAX_WAIT_PER_REQUEST)))
            if gate["status"] in DECIDED:
                return gate
            if loop.time() >= deadline:
                raise GateTimeoutError(gate)
