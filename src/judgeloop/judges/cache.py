"""A cache of judge call results, so that re-running a judge version costs nothing.

Entries are keyed by (judge version, session content hash, sample index, prompt variant): the
judge version fixes the model, prompts, examples and decoding, the content hash fixes the
session, and sample/variant tell apart the calls one judgment makes (self-consistency samples,
swapped pairwise order, simulated-annotator prompts). A record is the JSON the backend needs to
rebuild the call's reading. Memory holds the most recently used entries; an optional directory
keeps every entry in SQLite across processes and runs.
"""

from __future__ import annotations

import copy
import hashlib
import json
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from judgeloop.types import utc_now

CACHE_FILE_NAME = "verdicts.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS verdicts (
    key TEXT PRIMARY KEY,
    judge_version TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    sample INTEGER NOT NULL,
    variant TEXT NOT NULL,
    record TEXT NOT NULL,
    created_at TEXT NOT NULL
)
"""


@dataclass(frozen=True)
class CacheKey:
    """What identifies one judge call."""

    judge_version: str
    content_hash: str
    sample: int = 0
    variant: str = ""

    @property
    def digest(self) -> str:
        """SHA-256 of the key's canonical JSON."""
        canonical = json.dumps(
            [self.judge_version, self.content_hash, self.sample, self.variant],
            separators=(",", ":"),
            ensure_ascii=False,
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class VerdictCache:
    """An in-memory LRU of call records, backed by SQLite in ``directory`` when given."""

    def __init__(self, directory: str | Path | None = None, *, max_entries: int = 10_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self.directory = Path(directory) if directory is not None else None
        self._memory: OrderedDict[str, dict[str, Any]] = OrderedDict()
        # Judges run on an event loop but may share a cache with worker threads.
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._connection = sqlite3.connect(
                self.directory / CACHE_FILE_NAME, check_same_thread=False, isolation_level=None
            )
            self._connection.execute("PRAGMA journal_mode=WAL")
            self._connection.execute(_SCHEMA)

    def __len__(self) -> int:
        with self._lock:
            return len(self._memory)

    def get(self, key: CacheKey) -> dict[str, Any] | None:
        """The record stored under ``key`` (a copy), or None."""
        digest = key.digest
        with self._lock:
            record = self._memory.get(digest) or self._read_disk(digest)
            if record is None:
                return None
            self._remember(digest, record)
            # A copy: callers must not be able to change what the cache holds.
            return copy.deepcopy(record)

    def put(self, key: CacheKey, record: Mapping[str, Any]) -> None:
        """Store a JSON-serialisable record under ``key``, replacing any earlier one."""
        text = json.dumps(dict(record), sort_keys=True, ensure_ascii=False)
        digest = key.digest
        with self._lock:
            self._remember(digest, json.loads(text))
            if self._connection is not None:
                self._connection.execute(
                    "INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        digest,
                        key.judge_version,
                        key.content_hash,
                        key.sample,
                        key.variant,
                        text,
                        utc_now().isoformat(),
                    ),
                )

    def close(self) -> None:
        """Close the SQLite file; the memory part keeps working."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def _remember(self, digest: str, record: dict[str, Any]) -> None:
        self._memory[digest] = record
        self._memory.move_to_end(digest)
        while len(self._memory) > self.max_entries:
            self._memory.popitem(last=False)

    def _read_disk(self, digest: str) -> dict[str, Any] | None:
        if self._connection is None:
            return None
        row = self._connection.execute(
            "SELECT record FROM verdicts WHERE key = ?", (digest,)
        ).fetchone()
        if row is None:
            return None
        record: dict[str, Any] = json.loads(row[0])
        return record
