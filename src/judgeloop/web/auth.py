"""Signing in to the web UI: an API key in a cookie, checked on every request, and CSRF tokens.

The cookie holds the key itself (HttpOnly, SameSite=Strict), so revoking the key signs the
browser out at its next request. Forms carry a token derived from the key: an HMAC keyed by
the key, which another site can neither read nor compute.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import parse_qsl, urlsplit

from fastapi import Depends, HTTPException, Request, status

from judgeloop.api.deps import EngineDep
from judgeloop.api.json_checks import text_problem
from judgeloop.models import ApiKey
from judgeloop.store import authenticate, db_session

COOKIE_NAME = "judgeloop_key"
COOKIE_PATH = "/ui"
UI_ROLES = ("reviewer", "engineer", "admin")
REVIEWER_ROLES = ("reviewer", "admin")
ENGINEER_ROLES = ("engineer", "admin")
_CSRF_MESSAGE = b"judgeloop web form v1"


class LoginRequired(Exception):
    """No valid key in the cookie: the browser goes to the login page."""

    def __init__(self, next_path: str, *, expired: bool) -> None:
        super().__init__(next_path)
        self.next_path = next_path
        self.expired = expired


class Forbidden(Exception):
    """The key may not see this page, or a form's CSRF token or origin is wrong."""

    def __init__(self, message: str, user: WebUser | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.user = user


@dataclass(frozen=True)
class WebUser:
    """The signed-in key (detached from any database session) and its form token."""

    key: ApiKey
    csrf: str

    @property
    def name(self) -> str:
        """The key's name, which is how reviews and labels record the reviewer."""
        return self.key.name

    @property
    def role(self) -> str:
        """pipeline, reviewer, engineer or admin."""
        return self.key.role

    @property
    def reviews(self) -> bool:
        """May work the review queue."""
        return self.key.role in REVIEWER_ROLES

    @property
    def engineers(self) -> bool:
        """May read the engineer pages."""
        return self.key.role in ENGINEER_ROLES


def csrf_token(plaintext_key: str) -> str:
    """The form token of a key: HMAC-SHA256 keyed by the key itself."""
    return hmac.new(plaintext_key.encode("utf-8"), _CSRF_MESSAGE, hashlib.sha256).hexdigest()


def load_key(engine: EngineDep, plaintext: str) -> ApiKey | None:
    """The live key for ``plaintext``, detached, in a transaction that ends at once."""
    with db_session(engine) as db:
        key = authenticate(db, plaintext)
        if key is not None:
            db.expunge(key)
        # On SQLite every transaction holds the write lock; end it before rendering.
        db.rollback()
    return key


def _requested_path(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def current_user(request: Request, engine: EngineDep) -> WebUser:
    """The user of this request; LoginRequired when the cookie is missing, unknown or revoked."""
    plaintext = request.cookies.get(COOKIE_NAME)
    key = load_key(engine, plaintext) if plaintext else None
    if plaintext is None or key is None or key.role not in UI_ROLES:
        raise LoginRequired(_requested_path(request), expired=plaintext is not None)
    return WebUser(key=key, csrf=csrf_token(plaintext))


UserDep = Annotated[WebUser, Depends(current_user)]


def require(*roles: str) -> Callable[[WebUser], WebUser]:
    """A dependency admitting users whose key has one of ``roles``; others get the 403 page."""

    def check(user: UserDep) -> WebUser:
        if user.role not in roles:
            raise Forbidden(
                f"This page is for {' and '.join(roles)} keys; you are signed in with the "
                f"{user.role} key {user.name!r}.",
                user,
            )
        return user

    return check


ReviewerUser = Annotated[WebUser, Depends(require(*REVIEWER_ROLES))]
EngineerUser = Annotated[WebUser, Depends(require(*ENGINEER_ROLES))]


async def form_fields(request: Request) -> dict[str, str]:
    """The fields of a urlencoded form body (the only kind the UI posts)."""
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            detail="the web UI accepts application/x-www-form-urlencoded forms only",
        )
    body = (await request.body()).decode("utf-8", errors="replace")
    fields = dict(parse_qsl(body, keep_blank_values=True))
    problems = [
        {"loc": ["form", name], "msg": problem, "type": "string_unstorable"}
        for name, value in fields.items()
        if (problem := text_problem(name) or text_problem(value))
    ]
    if problems:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=problems)
    return fields


FormDep = Annotated[dict[str, str], Depends(form_fields)]


def check_origin(request: Request) -> None:
    """Refuse a form posted from another origin (browsers send Origin on every POST)."""
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
        raise Forbidden("This form was posted from another site; it was refused.")


@dataclass(frozen=True)
class Posted:
    """A form posted by a signed-in user, with its CSRF token and origin checked."""

    user: WebUser
    form: dict[str, str]


def posted_by(*roles: str) -> Callable[..., Posted]:
    """A dependency for POST routes: the user has one of ``roles`` and the form is genuine."""
    role_check = require(*roles)

    def check(request: Request, user: UserDep, form: FormDep) -> Posted:
        check_origin(request)
        if not hmac.compare_digest(form.get("csrf", ""), user.csrf):
            raise Forbidden("The form's security token is missing or wrong; reload the page.", user)
        return Posted(user=role_check(user), form=form)

    return check


ReviewerPost = Annotated[Posted, Depends(posted_by(*REVIEWER_ROLES))]
AnyUserPost = Annotated[Posted, Depends(posted_by(*UI_ROLES))]


def safe_next(path: str | None) -> str | None:
    """``path`` when it is a page of this UI, else None (no open redirects)."""
    if not path or not path.startswith("/ui/") or path.startswith("/ui/login"):
        return None
    if "\\" in path or "//" in path or any(ord(char) < 32 for char in path):
        return None
    return path


def home_of(role: str) -> str:
    """Where a role lands after signing in."""
    return "/ui/queue" if role in REVIEWER_ROLES else "/ui/judges"
