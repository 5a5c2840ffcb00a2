"""Replay files: one JSON object a line, ``{"id", "human", "judges"}``."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from judgeloop.sessions.public.base import ReplayRow


def write_replay(path: Path, rows: Iterable[ReplayRow]) -> int:
    """Write ``rows`` as JSON Lines to ``path`` (parents created); return how many."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False, sort_keys=False) + "\n")
            count += 1
    return count
