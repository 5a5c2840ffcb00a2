"""Loading stored sessions as judge inputs, and resolving example references."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlmodel import Session as DbSession
from sqlmodel import select

from judgeloop.judges.outcome import ResolvedExample, SessionInput
from judgeloop.judges.spec import FewShotExample
from judgeloop.models import Session
from judgeloop.store import NotFoundError, find_sessions


def as_input(row: Session) -> SessionInput:
    """A stored session row as a judge input."""
    assert row.id is not None
    return SessionInput(
        id=row.id,
        source=row.source,
        external_id=row.external_id,
        messages=row.messages,
        metadata=row.session_metadata,
        content_hash=row.content_hash,
    )


def load_inputs(db: DbSession, session_ids: Iterable[int]) -> dict[int, SessionInput]:
    """Load sessions by id, in chunks."""
    wanted = sorted(set(session_ids))
    found: dict[int, SessionInput] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        for row in db.exec(select(Session).where(Session.id.in_(chunk))):  # type: ignore[union-attr]
            found[row.id or 0] = as_input(row)
    return found


def resolve_examples(db: DbSession, examples: Sequence[FewShotExample]) -> list[ResolvedExample]:
    """Load each example's session; a missing one is an error naming it."""
    keys = [(e.session.source, e.session.external_id) for e in examples]
    rows = find_sessions(db, keys)
    resolved = []
    for example, key in zip(examples, keys, strict=True):
        if key not in rows:
            raise NotFoundError(
                f"example session {key[0]}/{key[1]} is not stored; import its sessions first"
            )
        resolved.append(ResolvedExample(example=example, session=as_input(rows[key])))
    return resolved


def session_keys_of(db: DbSession, session_ids: Iterable[int]) -> dict[int, tuple[str, str]]:
    """Session id -> (source, external_id), without loading messages."""
    wanted = sorted(set(session_ids))
    keys: dict[int, tuple[str, str]] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        statement = select(Session.id, Session.source, Session.external_id).where(
            Session.id.in_(chunk)  # type: ignore[union-attr]
        )
        for session_id, source, external_id in db.exec(statement):
            keys[int(session_id or 0)] = (source, external_id)
    return keys
