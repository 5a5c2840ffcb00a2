r"""Values that parse as JSON but that a database cannot store.

PostgreSQL refuses NUL characters in text and jsonb; a lone UTF-16 surrogate (``"\ud800"``
in JSON) has no UTF-8 encoding at all; NaN and Infinity are not JSON, so jsonb refuses
them too. Found before anything is written, each is reported with its place.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

Loc = tuple[str | int, ...]


def _shown(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")


def string_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored, or None."""
    if "\x00" in text:
        return f"contains a NUL character (\\u0000), which cannot be stored: {_shown(text)}"
    if any("\ud800" <= char <= "\udfff" for char in text):
        return "contains a lone UTF-16 surrogate (\\ud800-\\udfff), which is not valid Unicode"
    return None


def unstorable_values(value: Any, loc: Loc = ()) -> Iterator[tuple[Loc, str]]:
    """Yield (place, why) for each string, key or number under ``value`` that cannot be stored."""
    if isinstance(value, str):
        problem = string_problem(value)
        if problem:
            yield loc, problem
    elif isinstance(value, float) and not math.isfinite(value):
        yield loc, f"{value} is not a JSON number"
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from unstorable_values(item, (*loc, index))
    elif isinstance(value, dict):
        for key, item in value.items():
            problem = string_problem(key)
            if problem:
                yield loc, f"key {problem}"
            yield from unstorable_values(item, (*loc, key))
