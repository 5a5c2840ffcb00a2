"""Checks of raw JSON request bodies that the JSON parser and pydantic leave to the database.

Both databases refuse some values that ``json.loads`` accepts: PostgreSQL rejects NUL
characters in text and jsonb, neither can encode a lone UTF-16 surrogate as UTF-8, and
NaN or Infinity are not JSON. Deep nesting makes the parser raise RecursionError. Each of
these is found here, before any handler runs, and named with its place in the body.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any

from judgeloop.sessions.unstorable import string_problem

Loc = tuple[str | int, ...]

MAX_JSON_DEPTH = 64
# Python refuses to turn longer digit strings into ints (sys.get_int_max_str_digits).
MAX_NUMBER_DIGITS = 4300

_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_BRACKETS = b"[{]}"
_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in _BRACKETS)
# Escapes that decode to NUL or to a UTF-16 surrogate (a lone one cannot be stored).
_RISKY_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
_RISKY_BARE = re.compile(rb"NaN|Infinity|[0-9]{%d,}|[eE][+-]?[0-9]{3,}" % MAX_NUMBER_DIGITS)


class _NotANumber:
    """A NaN, Infinity or over-long number, kept as text until the walk reports it."""

    def __init__(self, text: str) -> None:
        self.text = text


def _max_depth(brackets: bytes) -> int:
    depth = deepest = 0
    for byte in brackets:
        if byte in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _parse_int(text: str) -> int | _NotANumber:
    return _NotANumber(text) if len(text.lstrip("-")) > MAX_NUMBER_DIGITS else int(text)


def _parse_float(text: str) -> float | _NotANumber:
    value = float(text)
    return value if math.isfinite(value) else _NotANumber(text)


def _shown(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _walk(value: Any, loc: Loc) -> Iterator[tuple[Loc, str, str]]:
    if isinstance(value, str):
        problem = string_problem(value)
        if problem:
            yield loc, problem, "string_unstorable"
    elif isinstance(value, _NotANumber):
        yield (
            loc,
            f"{_shown(value.text)} is not a finite JSON number of at most "
            f"{MAX_NUMBER_DIGITS} digits",
            "number_invalid",
        )
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, (*loc, index))
    elif isinstance(value, dict):
        for key, item in value.items():
            problem = string_problem(key)
            if problem:
                yield loc, f"key {problem}", "string_unstorable"
            yield from _walk(item, (*loc, key))


def json_body_problems(body: bytes, max_depth: int = MAX_JSON_DEPTH) -> list[dict[str, Any]]:
    """Return what is wrong with a JSON body, as 422 error entries; [] when nothing is.

    Syntax errors are left to the framework, which reports them with their position.
    """
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as error:
        return [
            {
                "loc": ["body"],
                "msg": f"request body is not valid UTF-8: byte 0x{body[error.start]:02x} at "
                f"position {error.start} ({error.reason})",
                "type": "utf8_invalid",
            }
        ]
    outside_strings = _STRING.sub(b'""', body)
    brackets = outside_strings.translate(None, _NOT_BRACKETS)
    # Counting first keeps ordinary bodies from the per-byte loop.
    if brackets.count(b"[") + brackets.count(b"{") > max_depth:
        depth = _max_depth(brackets)
        if depth > max_depth:
            return [
                {
                    "loc": ["body"],
                    "msg": f"request body nests arrays and objects {depth} deep; at most "
                    f"{max_depth} levels of nesting are accepted",
                    "type": "json_too_deep",
                }
            ]
    if not (_RISKY_ESCAPE.search(body) or _RISKY_BARE.search(outside_strings)):
        return []
    try:
        data = json.loads(
            body, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_NotANumber
        )
    except ValueError:
        return []  # not JSON at all: the framework names the syntax error
    return [{"loc": ["body", *loc], "msg": msg, "type": kind} for loc, msg, kind in _walk(data, ())]


def text_problem(text: str) -> str | None:
    """Why ``text`` (a query, path or form value) cannot be stored, or None."""
    return string_problem(text)
