"""Errors the store raises; the API turns them into 404, 409 and 422 answers."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input: where (a path of keys and indexes) and why."""

    loc: tuple[str | int, ...]
    msg: str
    type: str = "value_error"


class NotFoundError(LookupError):
    """A referenced row does not exist."""


class ConflictError(RuntimeError):
    """The request clashes with the current state (someone else holds the claim, ...)."""


@dataclass
class InvalidInputError(ValueError):
    """Input that parsed but does not fit the stored data (unknown criterion, label, session)."""

    problems: list[Problem] = field(default_factory=list)

    def __str__(self) -> str:
        return "; ".join(
            f"{'.'.join(str(part) for part in problem.loc)}: {problem.msg}"
            for problem in self.problems
        )
