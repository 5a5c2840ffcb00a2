"""What the YAML rule files (escalation policy, approval gates) share.

Where the file is, reading it, describing validation errors, and parsing patterns and numbers.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError


def rule_file_path(configured: Path | None, judges_dir: Path, filename: str) -> Path | None:
    """The configured file, else ``filename`` in the judges folder when it exists, else None."""
    if configured is not None:
        return configured
    candidate = judges_dir / filename
    return candidate if candidate.is_file() else None


def read_rule_file(path: Path, error: type[ValueError], *, expected: str) -> dict[str, Any] | None:
    """The file's YAML mapping (None when empty); ``error`` naming the file otherwise."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as problem:
        raise error(f"{path}: {problem}") from problem
    if data is None:
        return None
    if not isinstance(data, dict):
        raise error(f"{path}: expected a mapping with {expected}")
    return data


def describe_error(error: ValidationError, *, prefix: str = "") -> str:
    """One line naming each invalid field and what is wrong with it."""
    parts = []
    for detail in error.errors():
        location = ".".join(str(part) for part in (prefix, *detail["loc"]) if part != "")
        message = detail["msg"].removeprefix("Value error, ")
        parts.append(f"{location}: {message}" if location else message)
    return "; ".join(parts)


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
