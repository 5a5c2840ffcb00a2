"""Signing in and out, and the landing page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from judgeloop.api.deps import EngineDep
from judgeloop.web.auth import (
    COOKIE_NAME,
    COOKIE_PATH,
    UI_ROLES,
    AnyUserPost,
    FormDep,
    UserDep,
    check_origin,
    home_of,
    load_key,
    safe_next,
)
from judgeloop.web.rendering import page

router = APIRouter()

NextQuery = Annotated[str | None, Query(max_length=2000)]


def _login_page(
    request: Request, *, next_path: str | None, error: str | None = None, status_code: int = 200
) -> Response:
    return page(
        request,
        "login.html",
        {"title": "Sign in", "next": next_path or "", "error": error},
        user=None,
        status_code=status_code,
    )


@router.get("/ui", include_in_schema=False)
@router.get("/ui/", include_in_schema=False)
def home(user: UserDep) -> Response:
    """Reviewers land on the queue, engineers on the judges."""
    return RedirectResponse(home_of(user.role), status_code=303)


@router.get("/ui/login", response_class=HTMLResponse, include_in_schema=False)
def login_form(request: Request, next: NextQuery = None, expired: bool = False) -> Response:
    """The sign-in form: paste an API key."""
    error = "Your key is no longer valid (revoked?); sign in again." if expired else None
    return _login_page(request, next_path=safe_next(next), error=error)


@router.post("/ui/login", include_in_schema=False)
def login(request: Request, engine: EngineDep, form: FormDep) -> Response:
    """Check the key; on success keep it in an HttpOnly cookie and go on."""
    check_origin(request)
    plaintext = form.get("key", "").strip()
    next_path = safe_next(form.get("next"))
    key = load_key(engine, plaintext) if plaintext else None
    if key is None:
        return _login_page(
            request,
            next_path=next_path,
            error="That key is unknown or revoked. Paste the whole key, starting with jl_.",
            status_code=401,
        )
    if key.role not in UI_ROLES:
        return _login_page(
            request,
            next_path=next_path,
            error=f"A {key.role} key is for the API only; sign in with a reviewer, engineer "
            "or admin key.",
            status_code=403,
        )
    response = RedirectResponse(next_path or home_of(key.role), status_code=303)
    response.set_cookie(
        COOKIE_NAME,
        plaintext,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/ui/logout", include_in_schema=False)
def logout(posted: AnyUserPost) -> Response:
    """Forget the key in this browser."""
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE_NAME, path=COOKIE_PATH, httponly=True, samesite="strict")
    return response
