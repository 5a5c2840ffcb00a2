"""Reading JSON Lines files of sessions, labels or criteria, with file:line errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from pydantic import BaseModel, ValidationError

from judgeloop.sessions.unstorable import unstorable_values

ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True)
class LineError:
    """Why one line of a file was refused."""

    path: Path
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


@dataclass(frozen=True)
class ParsedLine(Generic[ModelT]):
    """One accepted line."""

    line: int
    item: ModelT


def describe_validation_error(error: ValidationError) -> str:
    """Turn a pydantic error into one line naming each field and its problem."""
    parts = []
    for detail in error.errors():
        location = ".".join(str(part) for part in detail["loc"]) or "(line)"
        message = detail["msg"].removeprefix("Value error, ")
        parts.append(f"{location}: {message}")
    return "; ".join(parts)


def read_jsonl(path: Path, model: type[ModelT]) -> Iterator[ParsedLine[ModelT] | LineError]:
    """Yield each non-blank line of ``path`` parsed as ``model``, or the reason it is not."""
    with path.open("rb") as handle:
        for line_number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                yield LineError(path, line_number, f"not valid UTF-8 ({error.reason})")
                continue
            try:
                data = json.loads(text)
            except json.JSONDecodeError as error:
                yield LineError(path, line_number, f"invalid JSON: {error.msg} (col {error.colno})")
                continue
            if not isinstance(data, dict):
                yield LineError(path, line_number, "expected a JSON object")
                continue
            unstorable = [
                f"{'.'.join(map(str, loc)) or '(line)'}: {why}"
                for loc, why in unstorable_values(data)
            ]
            if unstorable:
                yield LineError(path, line_number, "; ".join(unstorable))
                continue
            try:
                yield ParsedLine(line_number, model.model_validate(data))
            except ValidationError as error:
                yield LineError(path, line_number, describe_validation_error(error))


def count_lines(path: Path) -> int:
    """Count the non-blank lines of ``path`` (for progress bars)."""
    with path.open("rb") as handle:
        return sum(1 for raw in handle if raw.strip())
