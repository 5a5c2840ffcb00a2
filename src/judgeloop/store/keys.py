"""API keys: random, shown once, stored as SHA-256, checked in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlmodel import Session as DbSession
from sqlmodel import select

from judgeloop.models import API_ROLES, ApiKey
from judgeloop.store.audit import record_event
from judgeloop.store.errors import InvalidInputError, NotFoundError, Problem
from judgeloop.types import utc_now

KEY_PREFIX_LENGTH = 12


def hash_key(plaintext: str) -> str:
    """Return the SHA-256 hex digest of a key.

    A fast hash is enough: keys carry 256 random bits, so there is nothing to brute-force,
    and a slow password hash would cost every request.
    """
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def create_key(
    db: DbSession, *, role: str, name: str, actor: str, senior: bool = False
) -> tuple[ApiKey, str]:
    """Create a key for ``role``; return the row and the plaintext, which is never stored.

    ``senior`` marks a reviewer who adjudicates disagreements and takes overdue items.
    """
    if role not in API_ROLES:
        raise InvalidInputError(
            [Problem(("role",), f"unknown role {role!r}; allowed: {', '.join(API_ROLES)}")]
        )
    if not name.strip():
        raise InvalidInputError([Problem(("name",), "a key needs a non-empty name")])
    prefix = secrets.token_hex(KEY_PREFIX_LENGTH // 2)
    plaintext = f"jl_{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey(name=name, role=role, prefix=prefix, key_hash=hash_key(plaintext), senior=senior)
    db.add(row)
    db.flush()
    record_event(
        db,
        actor=actor,
        action="key.create",
        target_type="api_key",
        target_id=str(row.id),
        detail={"name": name, "role": role, "prefix": prefix, "senior": senior},
    )
    db.commit()
    return row, plaintext


def authenticate(db: DbSession, plaintext: str) -> ApiKey | None:
    """Return the live key matching ``plaintext``, or None."""
    parts = plaintext.split("_", 2)
    if len(parts) != 3 or parts[0] != "jl" or len(parts[1]) != KEY_PREFIX_LENGTH:
        return None
    presented_hash = hash_key(plaintext)
    candidates = db.exec(select(ApiKey).where(ApiKey.prefix == parts[1]))
    match: ApiKey | None = None
    for candidate in candidates:
        # compare_digest keeps the comparison time independent of where the hashes differ.
        if hmac.compare_digest(candidate.key_hash, presented_hash) and candidate.revoked_at is None:
            match = candidate
    return match


def list_keys(db: DbSession) -> list[ApiKey]:
    """Return every key, revoked ones included."""
    return list(db.exec(select(ApiKey).order_by(ApiKey.id)))  # type: ignore[arg-type]


def revoke_key(db: DbSession, key_id: int, *, actor: str) -> ApiKey:
    """Revoke key ``key_id``; requests with it get 401 from now on."""
    row = db.get(ApiKey, key_id)
    if row is None:
        raise NotFoundError(f"API key {key_id} does not exist")
    if row.revoked_at is None:
        row.revoked_at = utc_now()
        db.add(row)
        record_event(
            db,
            actor=actor,
            action="key.revoke",
            target_type="api_key",
            target_id=str(key_id),
            detail={"name": row.name, "role": row.role},
        )
        db.commit()
    return row
