"""The review queue in the store: leases, timeouts, dual review, adjudication, blind views."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, func
from sqlmodel import select

from judgeloop.models import Decision, HumanLabel, QueueItem, Review
from judgeloop.store import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    assign_clusters,
    authenticate,
    claim_item,
    claim_next,
    db_session,
    enqueue,
    expire_leases,
    item_for_reviewer,
    list_queue,
    make_engine,
    queue_load,
    release_item,
    submit_review,
)
from judgeloop.types import utc_now
from tests.queue_factories import HARD_TIMEOUT, LEASE, SAFE, escalated_item, reviewer
from tests.test_cli import run_cli

# --------------------------------------------------------------------------- enqueue, list


def test_enqueue_twice_gives_one_item_due_after_the_hard_timeout(engine: Engine) -> None:
    with db_session(engine) as db:
        before = utc_now()
        item = escalated_item(db, reasons=("low_confidence", "audit"))
        decision = db.get(Decision, item.decision_id)
        assert decision is not None
        again = enqueue(
            db,
            decision,
            priority=999,
            reasons=["other"],
            reviews_required=2,
            hard_timeout=HARD_TIMEOUT,
        )
        assert again.id == item.id
        assert db.exec(select(func.count()).select_from(QueueItem)).one() == 1
        assert again.priority == 200 and again.reasons == ["low_confidence", "audit"]
        assert item.status == "open" and item.due_at is not None
        assert before + HARD_TIMEOUT <= item.due_at <= utc_now() + HARD_TIMEOUT


def test_list_orders_by_priority_then_age_and_filters(engine: Engine) -> None:
    alice, _ = reviewer(engine, "alice")
    with db_session(engine) as db:
        audit = escalated_item(db, external_id="a", reasons=("audit",), priority=100)
        low = escalated_item(db, external_id="b", reasons=("low_confidence",), priority=200)
        safety = escalated_item(
            db,
            external_id="c",
            spec=SAFE,
            reasons=("safety:rule:payments",),
            priority=400,
            reviews_required=2,
        )
        older_low = low
        newer_low = escalated_item(db, external_id="d", priority=200)
        ids = [item.id for item in list_queue(db, reviewer=alice)]
        assert ids == [safety.id, older_low.id, newer_low.id, audit.id]
        assert [i.id for i in list_queue(db, reviewer=alice, reason="safety")] == [safety.id]
        assert [i.id for i in list_queue(db, reviewer=alice, reason="audit")] == [audit.id]
        assert [i.id for i in list_queue(db, reviewer=alice, criterion="safe")] == [safety.id]
        assert list_queue(db, reviewer=alice, status=["done"]) == []
        with pytest.raises(InvalidInputError, match="known: resolved, safe"):
            list_queue(db, reviewer=alice, criterion="nope")
        with pytest.raises(InvalidInputError, match="allowed: open, claimed"):
            list_queue(db, reviewer=alice, status=["pending"])


# --------------------------------------------------------------------------- claims


def test_claim_release_and_conflicts(engine: Engine) -> None:
    alice, _ = reviewer(engine, "alice")
    bob, _ = reviewer(engine, "bob")
    with db_session(engine) as db:
        item = escalated_item(db)
        assert item.id is not None
        claimed = claim_item(db, item.id, alice, lease=LEASE)
        assert claimed.status == "claimed" and claimed.claimed_by == "alice"
        assert claimed.lease_expires_at is not None and claimed.lease_expires_at > utc_now()
        with pytest.raises(ConflictError, match="claimed by 'alice' until"):
            claim_item(db, item.id, bob, lease=LEASE)
        with pytest.raises(ConflictError, match="'bob' holds no claim"):
            release_item(db, item.id, bob)
        assert claim_item(db, item.id, alice, lease=LEASE).claimed_by == "alice"  # renewal
        released = release_item(db, item.id, alice)
        assert released.status == "open" and released.claimed_by is None
        assert claim_item(db, item.id, bob, lease=LEASE).claimed_by == "bob"
        with pytest.raises(NotFoundError):
            claim_item(db, 9999, bob, lease=LEASE)


def test_claim_next_takes_the_most_urgent_item_with_filters(engine: Engine) -> None:
    alice, _ = reviewer(engine, "alice")
    bob, _ = reviewer(engine, "bob")
    with db_session(engine) as db:
        low = escalated_item(db, external_id="a", priority=200)
        audit = escalated_item(db, external_id="b", reasons=("audit",), priority=100)
        first = claim_next(db, alice, lease=LEASE)
        assert first is not None and first.id == low.id
        again = claim_next(db, alice, lease=LEASE)
        assert again is not None and again.id == low.id  # one's own claim first
        second = claim_next(db, bob, lease=LEASE)
        assert second is not None and second.id == audit.id
        assert claim_next(db, bob, lease=LEASE, reason="low_confidence") is None


def _queue_queries(
    engine: Engine, run: Callable[[], object], kind: str, marker: str
) -> list[tuple[str, Any]]:
    """The statements on queue_items starting with ``kind`` and containing ``marker`` that
    ``run`` ran, with their parameters."""
    seen: list[tuple[str, Any]] = []

    def record(_conn: object, _cursor: object, statement: str, parameters: Any, *_: object) -> None:
        if statement.startswith(kind) and "queue_items" in statement and marker in statement:
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        run()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return seen


def _plan(engine: Engine, statement: str, parameters: Any) -> str:
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if engine.dialect.name == "sqlite":
            cursor.execute(f"EXPLAIN QUERY PLAN {statement}", parameters)
            return "\n".join(str(row[-1]) for row in cursor.fetchall())
        # A tiny table is cheaper to scan and sort; forbid both to see whether an index can
        # hand over the rows in claim order (a Sort node would remain if none can).
        cursor.execute("SET enable_seqscan = off")
        cursor.execute("SET enable_sort = off")
        cursor.execute(f"EXPLAIN {statement}", parameters)
        return "\n".join(str(row[0]) for row in cursor.fetchall())
    finally:
        raw.rollback()
        raw.close()


@pytest.mark.parametrize("senior", [False, True], ids=["reviewer", "senior"])
def test_claim_next_reads_the_claim_order_index_without_sorting(
    engine: Engine, senior: bool
) -> None:
    someone, _ = reviewer(engine, "someone", senior=senior)
    with db_session(engine) as db:
        for index in range(3):
            escalated_item(db, external_id=f"s-{index}", priority=100 + index)
        claim_next(db, someone, lease=LEASE)  # so the own-claim query finds a row too

        def claim() -> None:
            claim_next(db, someone, lease=LEASE, reason="low_confidence")

        queries = _queue_queries(engine, claim, "SELECT", "ORDER BY")
    assert queries
    for statement, parameters in queries:
        plan = _plan(engine, statement, parameters)
        assert "ix_queue_items_claim_order" in plan, plan
        assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan


def test_the_overdue_check_reads_its_index(engine: Engine) -> None:
    with db_session(engine) as db:
        escalated_item(db)
        queries = _queue_queries(engine, lambda: expire_leases(db), "UPDATE", "overdue_at")
    [(statement, parameters)] = queries
    assert "ix_queue_items_overdue_check" in _plan(engine, statement, parameters)


def _claim_concurrently(url: str, item_id: int | None, names: list[str]) -> list[tuple[int, str]]:
    """Each name claims ``item_id`` (None: the next item) from its own thread, engine and
    connection, all at once; return (item id, claimant) of each successful claim."""
    engines = [make_engine(url) for _ in names]
    keys = []
    for index, name in enumerate(names):
        key, _ = reviewer(engines[index], name)
        keys.append(key)
    barrier = threading.Barrier(len(names))
    winners: list[tuple[int, str]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def claim(index: int) -> None:
        with db_session(engines[index]) as db:
            db.connection()  # connect before the barrier: the claims, not the logins, race
            db.rollback()
            barrier.wait()
            try:
                if item_id is None:
                    item = claim_next(db, keys[index], lease=LEASE)
                else:
                    item = claim_item(db, item_id, keys[index], lease=LEASE)
            except ConflictError:
                return
            except BaseException as error:  # noqa: BLE001 (reported by the test)
                with lock:
                    errors.append(error)
                return
            if item is not None:
                with lock:
                    winners.append((item.id or 0, item.claimed_by or ""))

    threads = [threading.Thread(target=claim, args=(index,)) for index in range(len(names))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for engine in engines:
        engine.dispose()
    assert not errors, errors
    return winners


def test_twenty_concurrent_claims_give_exactly_one_lease(engine: Engine, database_url: str) -> None:
    with db_session(engine) as db:
        item = escalated_item(db)
    assert item.id is not None
    names = [f"reviewer-{index}" for index in range(20)]
    winners = _claim_concurrently(database_url, item.id, names)
    assert len(winners) == 1
    with db_session(engine) as db:
        stored = db.get(QueueItem, item.id)
        assert stored is not None
        assert stored.status == "claimed" and (stored.id, stored.claimed_by) == winners[0]


def test_concurrent_claim_next_hands_each_item_to_one_reviewer(
    engine: Engine, database_url: str
) -> None:
    with db_session(engine) as db:
        item_ids = {escalated_item(db, external_id=f"s-{index}").id for index in range(5)}
    winners = _claim_concurrently(database_url, None, [f"reviewer-{i}" for i in range(12)])
    assert sorted(item_id for item_id, _name in winners) == sorted(item_ids)
    assert len({name for _item_id, name in winners}) == 5


# --------------------------------------------------------------------------- timeouts


def test_an_expired_lease_returns_the_item_to_the_pool(engine: Engine) -> None:
    alice, _ = reviewer(engine, "alice")
    bob, _ = reviewer(engine, "bob")
    with db_session(engine) as db:
        item = escalated_item(db)
        assert item.id is not None
        claim_item(db, item.id, alice, lease=timedelta(minutes=15))
        assert expire_leases(db) == (0, 0)
        assert expire_leases(db, now=utc_now() + timedelta(minutes=16)) == (1, 0)
        stored = db.get(QueueItem, item.id, populate_existing=True)
        assert stored is not None and stored.status == "open" and stored.claimed_by is None
        assert [i.id for i in list_queue(db, reviewer=bob)] == [item.id]
        # A claim past its lease is lost to the next claimant even before expire_leases runs.
        claim_item(db, item.id, alice, lease=timedelta(seconds=-1))
        assert claim_item(db, item.id, bob, lease=LEASE).claimed_by == "bob"
        with pytest.raises(ConflictError, match="claimed by 'bob'"):
            submit_review(db, item.id, alice, label="yes")


def test_hard_timeout_marks_overdue_for_seniors_only(engine: Engine) -> None:
    alice, _ = reviewer(engine, "alice")
    senior, _ = reviewer(engine, "sam", senior=True)
    with db_session(engine) as db:
        item = escalated_item(db, hard_timeout=timedelta(hours=4))
        assert item.id is not None
        assert expire_leases(db, now=utc_now() + timedelta(hours=5)) == (0, 1)
        assert expire_leases(db, now=utc_now() + timedelta(hours=6)) == (0, 0)  # marked once
        stored = db.get(QueueItem, item.id, populate_existing=True)
        assert stored is not None and stored.overdue_at is not None and stored.senior_only
        assert list_queue(db, reviewer=alice) == []
        assert claim_next(db, alice, lease=LEASE) is None
        with pytest.raises(ConflictError, match="overdue: senior reviewers only"):
            claim_item(db, item.id, alice, lease=LEASE)
        assert [i.id for i in list_queue(db, reviewer=senior)] == [item.id]
        assert claim_item(db, item.id, senior, lease=LEASE).claimed_by == "sam"


# --------------------------------------------------------------------------- reviews


def _labels(engine: Engine) -> list[HumanLabel]:
    with db_session(engine) as db:
        return list(db.exec(select(HumanLabel).order_by(HumanLabel.id)))  # type: ignore[arg-type]


def test_a_review_becomes_one_human_label_and_reveals_the_judge(engine: Engine) -> None:
    alice, _ = reviewer(engine, "alice")
    with db_session(engine) as db:
        item = escalated_item(db, judge_label="yes", confidence=0.61)
        assert item.id is not None
        with pytest.raises(ConflictError, match="claim queue item"):
            submit_review(db, item.id, alice, label="no")
        claim_item(db, item.id, alice, lease=LEASE)
        with pytest.raises(InvalidInputError, match="allowed: 'yes', 'no'"):
            submit_review(db, item.id, alice, label="maybe")
        outcome = submit_review(
            db, item.id, alice, label="no", rationale="Not fixed.", correction="Refund it."
        )
    assert outcome.status == "done" and outcome.label_source == "review"
    assert outcome.judge is not None
    assert outcome.judge.label == "yes" and outcome.judge.calibrated_confidence == 0.61
    assert outcome.agrees_with_judge is False
    [label] = _labels(engine)
    assert label.id == outcome.label_id
    assert (label.value, label.annotator, label.source) == ("no", "alice", "review")
    assert (label.rationale, label.correction) == ("Not fixed.", "Refund it.")
    with db_session(engine) as db:
        with pytest.raises(ConflictError, match="already done"):
            claim_item(db, item.id, alice, lease=LEASE)


def test_audit_items_give_audit_labels(engine: Engine) -> None:
    alice, _ = reviewer(engine, "alice")
    with db_session(engine) as db:
        item = escalated_item(db, reasons=("audit",), priority=100)
        assert item.id is not None
        claim_item(db, item.id, alice, lease=LEASE)
        outcome = submit_review(db, item.id, alice, label="yes")
    assert outcome.label_source == "audit" and outcome.agrees_with_judge is True
    assert [label.source for label in _labels(engine)] == ["audit"]


def test_blind_view_hides_the_judge_until_one_has_reviewed(engine: Engine) -> None:
    alice, _ = reviewer(engine, "alice")
    with db_session(engine) as db:
        item = escalated_item(db, judge_label="no", confidence=0.42)
        assert item.id is not None
        claim_item(db, item.id, alice, lease=LEASE)
        before = item_for_reviewer(db, item.id, alice)
        assert before.judge is None and before.reason_detail == {} and before.reviews == []
        assert before.held_by_you and not before.reviewed_by_you
        assert before.session is not None and before.session.messages[0].role == "user"
        assert before.criterion is not None and before.criterion.labels == ["yes", "no"]
        assert before.reasons == ["low_confidence"]
        dumped = before.model_dump_json()
        # as a number, not inside a timestamp such as 13:42:20.422973
        assert "secret reasoning" not in dumped and not re.search(r"(?<![\d.])0\.42(?!\d)", dumped)
        submit_review(db, item.id, alice, label="yes")
        after = item_for_reviewer(db, item.id, alice)
    assert after.judge is not None
    assert (after.judge.label, after.judge.calibrated_confidence) == ("no", 0.42)
    assert after.judge.rationale == "The judge's secret reasoning."
    assert after.reason_detail["low_confidence"]["threshold"] == 0.8
    assert [review.label for review in after.reviews] == ["yes"]


def test_safety_items_need_two_reviewers_and_disagreement_goes_to_a_senior(
    engine: Engine,
) -> None:
    alice, _ = reviewer(engine, "alice")
    bob, _ = reviewer(engine, "bob")
    carol, _ = reviewer(engine, "carol")
    sam, _ = reviewer(engine, "sam", senior=True)
    with db_session(engine) as db:
        item = escalated_item(
            db, spec=SAFE, reasons=("safety:unsafe_verdict",), priority=400, reviews_required=2
        )
        assert item.id is not None
        claim_item(db, item.id, alice, lease=LEASE)
        first = submit_review(db, item.id, alice, label="safe")
        assert first.status == "open"
        # Alice may not give the second review, nor see the item in her list.
        with pytest.raises(ConflictError, match="already reviewed"):
            claim_item(db, item.id, alice, lease=LEASE)
        assert list_queue(db, reviewer=alice) == []
        assert claim_next(db, alice, lease=LEASE) is None
        # Bob reviews blind: neither the judge nor Alice's label.
        claim_item(db, item.id, bob, lease=LEASE)
        view = item_for_reviewer(db, item.id, bob)
        assert view.judge is None and view.reviews == [] and view.reviews_done == 1
        second = submit_review(db, item.id, bob, label="unsafe")
        assert second.status == "adjudication"
        stored = db.get(QueueItem, item.id, populate_existing=True)
        assert stored is not None and stored.senior_only
        # Only a senior who has not reviewed it adjudicates, seeing both reviews.
        with pytest.raises(ConflictError, match="senior reviewers only"):
            claim_item(db, item.id, carol, lease=LEASE)
        assert [i.id for i in list_queue(db, reviewer=sam, status=["adjudication"])] == [item.id]
        claimed = claim_next(db, sam, lease=LEASE)
        assert claimed is not None and claimed.id == item.id
        # Released, it goes back to adjudication, not to the first round.
        assert release_item(db, item.id, sam).status == "adjudication"
        claim_item(db, item.id, sam, lease=LEASE)
        view = item_for_reviewer(db, item.id, sam)
        assert view.adjudication and view.judge is None
        assert sorted(review.label or "" for review in view.reviews) == ["safe", "unsafe"]
        final = submit_review(db, item.id, sam, label="unsafe", rationale="Payment leak.")
        assert final.status == "done" and final.is_adjudication
        assert final.label_source == "adjudication"
        reviews = list(db.exec(select(Review).where(Review.queue_item_id == item.id)))
        assert [(r.reviewer, r.is_adjudication) for r in reviews] == [
            ("alice", False),
            ("bob", False),
            ("sam", True),
        ]
    assert [(x.annotator, x.value, x.source) for x in _labels(engine)] == [
        ("alice", "safe", "review"),
        ("bob", "unsafe", "review"),
        ("sam", "unsafe", "adjudication"),
    ]


def test_two_agreeing_safety_reviews_close_the_item(engine: Engine) -> None:
    alice, _ = reviewer(engine, "alice")
    bob, _ = reviewer(engine, "bob")
    with db_session(engine) as db:
        item = escalated_item(db, spec=SAFE, reviews_required=2)
        assert item.id is not None
        for key in (alice, bob):
            claim_item(db, item.id, key, lease=LEASE)
            outcome = submit_review(db, item.id, key, label="unsafe")
    assert outcome.status == "done"
    assert len(_labels(engine)) == 2


def test_queue_load_counts_waiting_items_by_criterion_and_reason(engine: Engine) -> None:
    alice, _ = reviewer(engine, "alice")
    with db_session(engine) as db:
        escalated_item(db, external_id="a", reasons=("low_confidence", "audit"))
        done = escalated_item(db, external_id="b", reasons=("low_confidence",))
        escalated_item(db, external_id="c", spec=SAFE, reasons=("injection",))
        assert done.id is not None
        claim_item(db, done.id, alice, lease=LEASE)
        submit_review(db, done.id, alice, label="yes")
        loads = queue_load(db)
    assert [(x.criterion, x.reason, x.items) for x in loads] == [
        ("resolved", "audit", 1),
        ("resolved", "low_confidence", 1),
        ("safe", "injection", 1),
    ]
    assert all(x.oldest_age_seconds >= 0 and x.overdue == 0 for x in loads)


def test_clusters_group_similar_sessions(engine: Engine) -> None:
    refunds = [
        ("I want a refund for my broken blender", "Refund issued for the blender."),
        ("Please refund my damaged blender order", "Your blender refund is on its way."),
        ("Refund the blender, it arrived broken", "I issued a blender refund."),
        ("Can I get my money back for the blender", "Blender refund processed."),
    ]
    passwords = [
        ("I forgot my password and cannot log in", "Use the reset password link to log in."),
        ("Password reset email never arrived", "I resent the password reset email."),
        ("How do I change my login password", "Change your password under login settings."),
        ("Locked out after password attempts", "Your login is unlocked; reset the password."),
    ]
    alice, _ = reviewer(engine, "alice")
    with db_session(engine) as db:
        ids = {}
        for index, (user, assistant) in enumerate(refunds + passwords):
            item = escalated_item(db, external_id=f"s-{index}", user=user, assistant=assistant)
            ids[index] = item.id
        assert assign_clusters(db) == 8
        clusters = {
            index: db.get(QueueItem, item_id, populate_existing=True).cluster  # type: ignore[union-attr]
            for index, item_id in ids.items()
        }
        refund_cluster = clusters[0]
        listed = list_queue(db, reviewer=alice, cluster=refund_cluster)
    assert {clusters[i] for i in range(4)} == {refund_cluster}
    assert {clusters[i] for i in range(4, 8)} == {1 - (refund_cluster or 0)}
    assert {item.id for item in listed} == {ids[i] for i in range(4)}


def test_keys_create_senior_from_the_cli(database_url: str, engine: Engine) -> None:
    created = run_cli(
        database_url, "keys", "create", "--role", "reviewer", "--name", "sam", "--senior"
    )
    assert "senior reviewer" in created.stdout
    plain = run_cli(database_url, "keys", "create", "--role", "reviewer", "--name", "rita")
    with db_session(engine) as db:
        sam = authenticate(db, created.stdout.strip().splitlines()[-1])
        rita = authenticate(db, plain.stdout.strip().splitlines()[-1])
    assert sam is not None and sam.senior
    assert rita is not None and not rita.senior
