"""Templates, their filters, and the headers every page is sent with."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from judgeloop.web.auth import WebUser

WEB_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"

# Pages show sessions that may hold personal data: no caching, no framing, no third parties.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def interval_text(value: Any, percent: bool = False) -> str:
    """An interval (model or dict with estimate/low/high) as ``0.84 [0.78, 0.90]``."""
    if value is None:
        return "–"
    data = value if isinstance(value, dict) else value.model_dump()
    estimate, low, high = data.get("estimate"), data.get("low"), data.get("high")
    if estimate is None:
        return "–"
    fmt = "{:.1%}" if percent else "{:.3f}"
    if low is None or high is None:
        return fmt.format(estimate)
    return f"{fmt.format(estimate)} [{fmt.format(low)}, {fmt.format(high)}]"


def number(value: Any, digits: int = 3) -> str:
    """A float rounded for reading, or a dash."""
    if value is None:
        return "–"
    return f"{float(value):.{digits}f}"


def percent(value: Any, digits: int = 1) -> str:
    """A share as a percentage, or a dash."""
    if value is None:
        return "–"
    return f"{float(value):.{digits}%}"


def age(moment: datetime | None, now: datetime | None = None) -> str:
    """How long ago ``moment`` was, in the two largest units: ``3 h 12 min``."""
    if moment is None:
        return "–"
    now = now or datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = max(0, int((now - moment).total_seconds()))
    return duration(seconds)


def duration(seconds: float) -> str:
    """``seconds`` in the two largest units."""
    seconds = int(seconds)
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"


def timestamp(moment: datetime | None) -> str:
    """A UTC time to the minute."""
    if moment is None:
        return "–"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def pretty_json(value: Any) -> str:
    """JSON indented for reading (the template escapes it)."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)


def svg(markup: str) -> Markup:
    """Trust SVG that this package generated (its helpers escape every text they embed)."""
    return Markup(markup)


@lru_cache(maxsize=1)
def templates() -> Jinja2Templates:
    """The UI's templates with its filters, built on first use."""
    environment = Jinja2Templates(directory=str(TEMPLATES_DIR))
    environment.env.filters.update(
        interval=interval_text,
        number=number,
        percent=percent,
        age=age,
        duration=duration,
        timestamp=timestamp,
        pretty_json=pretty_json,
    )
    return environment


def page(
    request: Request,
    name: str,
    context: dict[str, Any],
    *,
    user: WebUser | None,
    status_code: int = 200,
) -> HTMLResponse:
    """Render template ``name`` with the signed-in ``user`` and the security headers."""
    response = templates().TemplateResponse(
        request, name, {"user": user, **context}, status_code=status_code
    )
    response.headers.update(SECURITY_HEADERS)
    return response
