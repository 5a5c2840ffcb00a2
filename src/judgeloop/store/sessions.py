"""Storing and reading sessions; (source, external_id) is stored once."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import tuple_
from sqlmodel import Session as DbSession
from sqlmodel import select

from judgeloop.models import Session, SessionCreate
from judgeloop.redaction import Redactor, configured_redactor
from judgeloop.store.audit import record_event
from judgeloop.store.errors import NotFoundError
from judgeloop.store.upsert import insert_ignoring_conflicts
from judgeloop.types import utc_now

SessionKey = tuple[str, str]


def session_content_hash(messages: list[dict[str, Any]], metadata: dict[str, Any]) -> str:
    """Hash messages and metadata canonically (sorted keys, no whitespace).

    Given the stored (redacted) content: sessions differing only in redacted PII hash alike,
    and the judge cache keyed by this hash never holds a key derived from PII.
    """
    canonical = json.dumps(
        {"messages": messages, "metadata": metadata},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _row_values(session: SessionCreate, redactor: Redactor) -> dict[str, Any]:
    messages = [
        redactor.message(m.model_dump(mode="json", exclude_defaults=True)) for m in session.messages
    ]
    metadata = redactor.value(session.metadata)
    return {
        "source": session.source,
        "external_id": session.external_id,
        "messages": messages,
        "session_metadata": metadata,
        "content_hash": session_content_hash(messages, metadata),
        "created_at": utc_now(),
    }


def add_sessions(
    db: DbSession,
    sessions: Sequence[SessionCreate],
    *,
    actor: str,
    pipeline_status: str | None = None,
) -> list[tuple[Session, bool]]:
    """Store new sessions and return (row, created) for each input, in input order.

    A session whose (source, external_id) is already stored is returned as it is, never
    stored twice, also when other writers post it at the same moment. New rows get
    ``pipeline_status`` ("pending": the worker will score them). PII in their messages and
    metadata is redacted first, as the settings say (``judgeloop.redaction``).
    """
    redactor = configured_redactor()
    keys = [(s.source, s.external_id) for s in sessions]
    existing_before = _find_by_keys(db, keys)
    new_rows: dict[SessionKey, dict[str, Any]] = {}
    for session, key in zip(sessions, keys, strict=True):
        if key not in existing_before and key not in new_rows:
            new_rows[key] = {**_row_values(session, redactor), "pipeline_status": pipeline_status}
    created_id_set = insert_ignoring_conflicts(
        db, Session, list(new_rows.values()), ["source", "external_id"]
    )
    stored = _find_by_keys(db, keys)
    created_ids = sorted(created_id_set)
    if created_ids:
        record_event(
            db,
            actor=actor,
            action="sessions.create",
            target_type="session",
            target_id=_id_range(created_ids),
            detail={"count": len(created_ids), "ids": created_ids[:1000]},
        )
    db.commit()
    results: list[tuple[Session, bool]] = []
    reported: set[int] = set()
    for key in keys:
        row = stored[key]
        created = row.id in created_id_set and row.id not in reported
        if row.id is not None:
            reported.add(row.id)
        results.append((row, created))
    return results


def _id_range(ids: list[int]) -> str:
    return str(ids[0]) if len(ids) == 1 else f"{ids[0]}..{ids[-1]}"


def _find_by_keys(db: DbSession, keys: Sequence[SessionKey]) -> dict[SessionKey, Session]:
    found: dict[SessionKey, Session] = {}
    unique_keys = list(dict.fromkeys(keys))
    for start in range(0, len(unique_keys), 500):
        chunk = unique_keys[start : start + 500]
        statement = select(Session).where(tuple_(Session.source, Session.external_id).in_(chunk))
        for row in db.exec(statement):
            found[(row.source, row.external_id)] = row
    return found


def get_session(db: DbSession, session_id: int) -> Session:
    """Return the stored session ``session_id`` or raise NotFoundError."""
    row = db.get(Session, session_id)
    if row is None:
        raise NotFoundError(f"session {session_id} does not exist")
    return row


def find_sessions(db: DbSession, keys: Sequence[SessionKey]) -> dict[SessionKey, Session]:
    """Return the stored sessions among ``keys``, by key."""
    return _find_by_keys(db, keys)


def count_sessions(db: DbSession) -> int:
    """Return how many sessions are stored."""
    from sqlalchemy import func

    return int(db.exec(select(func.count()).select_from(Session)).one())
