"""Clusters of similar sessions among waiting queue items, for reviewing in batches."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session as DbSession
from sqlmodel import col, select

from judgeloop.models import QueueItem, Session
from judgeloop.store.audit import record_event


def assign_clusters(db: DbSession, criterion_id: int | None = None) -> int:
    """Group the waiting items of each criterion into clusters of similar sessions.

    TF-IDF over each session's transcript, then k-means with k growing like the square root
    of the item count, so reviewers can work through one kind of session at a time. Cluster
    0 is the largest. Returns how many items got a cluster.
    """
    # Heavy and above the store in the layering: imported only when clustering runs.
    from judgeloop.judges.loading import as_input
    from judgeloop.judges.render import render_transcript

    conditions = [
        col(QueueItem.status) != "done",
        col(QueueItem.session_id).is_not(None),
        col(QueueItem.criterion_id).is_not(None),
    ]
    if criterion_id is not None:
        conditions.append(col(QueueItem.criterion_id) == criterion_id)
    rows = db.exec(
        select(QueueItem.id, QueueItem.criterion_id, Session)
        .join(Session, col(Session.id) == col(QueueItem.session_id))
        .where(*conditions)
        .order_by(col(QueueItem.id))
    ).all()
    by_criterion: dict[int, list[tuple[int, str]]] = {}
    for item_id, item_criterion, session in rows:
        assert item_id is not None and item_criterion is not None
        text = render_transcript(as_input(session))
        by_criterion.setdefault(item_criterion, []).append((item_id, text))
    # End the read before k-means: on SQLite every transaction holds the write lock, which
    # judging and accepting sessions need meanwhile.
    db.commit()
    updates: list[dict[str, int]] = []
    for members in by_criterion.values():
        clusters = _cluster_texts([text for _item_id, text in members])
        for (item_id, _text), cluster in zip(members, clusters, strict=True):
            updates.append({"item_id": item_id, "new_cluster": cluster})
    assigned = len(updates)
    if updates:
        # One executemany instead of a statement per item.
        table = QueueItem.__table__  # type: ignore[attr-defined]
        db.connection().execute(
            table.update()
            .where(table.c.id == sa.bindparam("item_id"))
            .values(cluster=sa.bindparam("new_cluster")),
            updates,
        )
    if assigned:
        record_event(
            db,
            actor="system",
            action="queue.cluster",
            target_type="queue_item",
            detail={"items": assigned, "criteria": sorted(by_criterion)},
        )
    db.commit()
    return assigned


def _cluster_texts(texts: list[str]) -> list[int]:
    """k-means cluster of each text, numbered by cluster size (0 = largest)."""
    import numpy as np
    from sklearn.cluster import KMeans
    from sklearn.feature_extraction.text import TfidfVectorizer

    k = min(20, max(1, round((len(texts) / 2) ** 0.5)), len(set(texts)))
    if k <= 1:
        return [0] * len(texts)
    vectors = TfidfVectorizer(sublinear_tf=True, max_features=20_000).fit_transform(texts)
    raw = KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(vectors)
    sizes = np.bincount(raw, minlength=k)
    # Stable numbering: larger clusters first, ties by first appearance.
    first_seen = {int(label): index for index, label in reversed(list(enumerate(raw)))}
    order = sorted(range(k), key=lambda label: (-int(sizes[label]), first_seen.get(label, 0)))
    renumber = {label: rank for rank, label in enumerate(order)}
    return [renumber[int(label)] for label in raw]
