"""The queue filter a reviewer works in, carried from page to page in links and forms."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Query


@dataclass(frozen=True)
class QueueFilter:
    """The batch a reviewer works in: one criterion, reason or cluster, or several."""

    criterion: str | None = None
    reason: str | None = None
    cluster: int | None = None

    @classmethod
    def from_form(cls, form: dict[str, str]) -> QueueFilter:
        """The filter carried by a form's hidden fields."""
        cluster = form.get("cluster", "")
        return cls(
            criterion=form.get("criterion") or None,
            reason=form.get("reason") or None,
            cluster=int(cluster) if cluster.strip().lstrip("-").isdigit() else None,
        )

    def params(self) -> dict[str, str]:
        """The filter as query parameters, empty ones left out."""
        values = {"criterion": self.criterion, "reason": self.reason, "cluster": self.cluster}
        return {name: str(value) for name, value in values.items() if value is not None}

    def query(self, **extra: str) -> str:
        """``?criterion=…`` (or an empty string) with ``extra`` parameters added."""
        params = {**self.params(), **{k: v for k, v in extra.items() if v}}
        return f"?{urlencode(params)}" if params else ""

    def without(self, name: str) -> QueueFilter:
        """The same filter with one dimension cleared."""
        return QueueFilter(**{**self.__dict__, name: None})

    def describe(self) -> str:
        """The filter in words."""
        parts = [f"{name} {value}" for name, value in self.params().items()]
        return ", ".join(parts) if parts else "everything"


FilterQuery = Annotated[str | None, Query(max_length=200)]
