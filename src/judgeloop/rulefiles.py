"""What the YAML rule files (escalation policy, approval gates) share: patterns and numbers."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """A case-insensitive regex; a ValueError naming the pattern when it does not compile."""
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as error:
        raise ValueError(f"invalid regular expression {pattern!r}: {error}") from error


def as_number(value: Any) -> float | None:
    """A number from an action argument ("1,250.00", "€120", 99); None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.replace(",", "").strip().lstrip("€$£"))
        except ValueError:
            return None
    return None
