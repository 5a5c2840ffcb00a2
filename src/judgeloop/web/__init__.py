"""The reviewer and engineer web UI, served under /ui by the API's app."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from judgeloop.web import engineer, gate_pages, login, reviewer
from judgeloop.web.auth import COOKIE_NAME, COOKIE_PATH, Forbidden, LoginRequired, safe_next
from judgeloop.web.rendering import STATIC_DIR, page

__all__ = ["install", "router"]

router = APIRouter(include_in_schema=False)
for _module in (login, reviewer, gate_pages, engineer):
    router.include_router(_module.router)


async def _login_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    params = {"next": safe_next(exc.next_path) or ""}
    if exc.expired:
        params["expired"] = "1"
    query = urlencode({k: v for k, v in params.items() if v})
    response = RedirectResponse("/ui/login" + (f"?{query}" if query else ""), status_code=303)
    if exc.expired:
        response.delete_cookie(COOKIE_NAME, path=COOKIE_PATH)
    return response


async def _forbidden(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Forbidden)
    return page(
        request,
        "error.html",
        {"title": "Not allowed", "heading": "Not allowed", "message": exc.message},
        user=exc.user,
        status_code=403,
    )


def install(app: FastAPI) -> None:
    """Serve the UI from ``app``: its pages, its static files and its error pages."""
    app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=STATIC_DIR), name="ui-static")
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(Forbidden, _forbidden)
