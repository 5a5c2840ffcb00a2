"""Token buckets in the database, so that every process on every machine shares one limit."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session as DbSession
from sqlmodel import select

from judgeloop.models import RateLimitBucket
from judgeloop.store.upsert import insert_ignoring_conflicts


def take_token(
    db: DbSession, key: str, *, per_second: float, capacity: float, now: datetime
) -> float:
    """Take one token from bucket ``key``: 0.0 when taken, else the seconds until one is there.

    The bucket refills at ``per_second`` up to ``capacity`` (a new bucket starts full). Its row
    is locked for the read-modify-write (``FOR UPDATE`` on PostgreSQL; SQLite transactions
    already hold the write lock), so concurrent takers never spend the same token. Elapsed
    time comes from the callers' clocks, which should be NTP-synchronised across machines.
    """
    insert_ignoring_conflicts(
        db,
        RateLimitBucket,
        [{"key": key, "tokens": capacity, "updated_at": now}],
        ["key"],
        id_column="key",
    )
    bucket = db.exec(
        select(RateLimitBucket).where(RateLimitBucket.key == key).with_for_update()
    ).one()
    # A clock behind the last taker's counts as no time passed, never as negative refill.
    elapsed = max((now - bucket.updated_at).total_seconds(), 0.0)
    tokens = min(capacity, bucket.tokens + elapsed * per_second)
    wait = 0.0 if tokens >= 1.0 else (1.0 - tokens) / per_second
    bucket.tokens = tokens - 1.0 if wait == 0.0 else tokens
    bucket.updated_at = max(now, bucket.updated_at)
    db.add(bucket)
    db.commit()
    return wait
