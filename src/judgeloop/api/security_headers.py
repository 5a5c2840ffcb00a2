"""An ASGI middleware that gives every response the browser-hardening headers.

UI pages set the full set themselves (``web.rendering.SECURITY_HEADERS``); this covers the
rest: JSON answers, redirects, static files, error pages and the API docs.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from judgeloop.web.rendering import SECURITY_HEADERS

# Swagger UI and ReDoc load their scripts from a CDN with inline bootstrap code; a script
# policy would blank them, so they only refuse to be framed.
DOCS_PATHS = ("/docs", "/docs/oauth2-redirect", "/redoc")
API_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
DOCS_POLICY = "frame-ancestors 'none'"
COMMON = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def headers_for(path: str) -> dict[str, str]:
    """The headers a response to ``path`` gets unless it set them itself."""
    if path == "/ui" or path.startswith("/ui/"):
        return {**COMMON, "Content-Security-Policy": SECURITY_HEADERS["Content-Security-Policy"]}
    if path in DOCS_PATHS:
        return {**COMMON, "Content-Security-Policy": DOCS_POLICY}
    return {**COMMON, "Content-Security-Policy": API_POLICY}


class SecurityHeadersMiddleware:
    """Add ``headers_for(path)`` to every HTTP response, keeping headers already set."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; fill in missing headers as the response starts."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        defaults = headers_for(scope.get("path", ""))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in defaults.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
