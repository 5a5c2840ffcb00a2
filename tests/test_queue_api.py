"""The queue over HTTP, against the live test server."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
from sqlalchemy import Engine
from sqlmodel import select

from judgeloop.models import HumanLabel
from judgeloop.store import claim_item, db_session
from tests.conftest import auth
from tests.queue_factories import SAFE, escalated_item, reviewer


def _item(engine: Engine, **kwargs: object) -> int:
    with db_session(engine) as db:
        item = escalated_item(db, **kwargs)  # type: ignore[arg-type]
    assert item.id is not None
    return item.id


def test_a_whole_review_over_http(api: httpx.Client, engine: Engine) -> None:
    item_id = _item(engine, judge_label="yes", confidence=0.58)
    _, alice = reviewer(engine, "alice")
    _, bob = reviewer(engine, "bob")

    listed = api.get("/v1/queue", headers=auth(alice))
    assert listed.status_code == 200, listed.text
    [entry] = listed.json()["data"]
    assert entry["id"] == item_id and entry["criterion"] == "resolved"
    assert entry["reasons"] == ["low_confidence"] and entry["status"] == "open"

    claimed = api.post("/v1/queue/claim", headers=auth(alice))
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["claimed_by"] == "alice"
    conflict = api.post(f"/v1/queue/{item_id}/claim", headers=auth(bob))
    assert conflict.status_code == 409 and "claimed by 'alice'" in conflict.json()["detail"]
    assert api.post("/v1/queue/claim", headers=auth(bob)).status_code == 204

    blind = api.get(f"/v1/queue/{item_id}", headers=auth(alice))
    assert blind.status_code == 200
    assert blind.json()["judge"] is None and blind.json()["held_by_you"] is True
    # as a number, not inside a timestamp such as 13:42:20.583973
    assert "secret reasoning" not in blind.text
    assert not re.search(r"(?<![\d.])0\.58(?!\d)", blind.text)
    assert blind.json()["session"]["messages"][0]["content"] == "Where is my order?"

    bad = api.post(f"/v1/queue/{item_id}/reviews", headers=auth(alice), json={"label": "maybe"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "label"]
    assert "allowed: 'yes', 'no'" in bad.json()["detail"][0]["msg"]

    review = api.post(
        f"/v1/queue/{item_id}/reviews",
        headers=auth(alice),
        json={"label": "no", "rationale": "Still lost.", "correction": "Open a trace."},
    )
    assert review.status_code == 201, review.text
    outcome = review.json()
    assert outcome["status"] == "done" and outcome["label_source"] == "review"
    assert outcome["judge"]["label"] == "yes" and outcome["judge"]["calibrated_confidence"] == 0.58
    assert outcome["agrees_with_judge"] is False

    revealed = api.get(f"/v1/queue/{item_id}", headers=auth(alice)).json()
    assert revealed["judge"]["rationale"] == "The judge's secret reasoning."
    again = api.post(f"/v1/queue/{item_id}/reviews", headers=auth(alice), json={"label": "no"})
    assert again.status_code == 409
    with db_session(engine) as db:
        labels = list(db.exec(select(HumanLabel)))
    assert [(x.id, x.value, x.annotator, x.source) for x in labels] == [
        (outcome["label_id"], "no", "alice", "review")
    ]


def test_release_load_filters_and_errors(api: httpx.Client, engine: Engine) -> None:
    low = _item(engine, external_id="a")
    safety = _item(
        engine,
        external_id="b",
        spec=SAFE,
        reasons=("safety:rule:payments",),
        priority=400,
        reviews_required=2,
    )
    _, alice = reviewer(engine, "alice")

    by_reason = api.get("/v1/queue", params={"reason": "safety"}, headers=auth(alice)).json()
    assert [entry["id"] for entry in by_reason["data"]] == [safety]
    by_criterion = api.get("/v1/queue", params={"criterion": "resolved"}, headers=auth(alice))
    assert [entry["id"] for entry in by_criterion.json()["data"]] == [low]
    unknown = api.get("/v1/queue", params={"criterion": "nope"}, headers=auth(alice))
    assert unknown.status_code == 422 and "known: resolved, safe" in unknown.text

    claimed = api.post("/v1/queue/claim", params={"criterion": "resolved"}, headers=auth(alice))
    assert claimed.json()["id"] == low
    released = api.post(f"/v1/queue/{low}/release", headers=auth(alice))
    assert released.status_code == 200 and released.json()["status"] == "open"
    assert api.post(f"/v1/queue/{low}/release", headers=auth(alice)).status_code == 409

    load = api.get("/v1/queue/load", headers=auth(alice)).json()
    assert [(x["criterion"], x["reason"], x["items"]) for x in load["data"]] == [
        ("resolved", "low_confidence", 1),
        ("safe", "safety:rule:payments", 1),
    ]

    assert api.get("/v1/queue/9999", headers=auth(alice)).status_code == 404
    assert api.post("/v1/queue/9999/claim", headers=auth(alice)).status_code == 404


def test_roles_admins_may_review_engineers_may_not(
    api: httpx.Client, engine: Engine, keys: dict[str, str]
) -> None:
    _item(engine)
    assert api.get("/v1/queue").status_code == 401
    assert api.get("/v1/queue", headers=auth(keys["engineer"])).status_code == 403
    assert api.get("/v1/queue", headers=auth(keys["pipeline"])).status_code == 403
    claimed = api.post("/v1/queue/claim", headers=auth(keys["admin"]))
    assert claimed.status_code == 200 and claimed.json()["claimed_by"] == "test-admin"


def test_disagreeing_safety_reviews_go_to_a_senior_over_http(
    api: httpx.Client, engine: Engine
) -> None:
    item_id = _item(engine, spec=SAFE, reasons=("safety:unsafe_verdict",), reviews_required=2)
    _, alice = reviewer(engine, "alice")
    _, bob = reviewer(engine, "bob")
    _, sam = reviewer(engine, "sam", senior=True)
    for key, label, expected in ((alice, "safe", "open"), (bob, "unsafe", "adjudication")):
        assert api.post(f"/v1/queue/{item_id}/claim", headers=auth(key)).status_code == 200
        answer = api.post(f"/v1/queue/{item_id}/reviews", headers=auth(key), json={"label": label})
        assert answer.status_code == 201 and answer.json()["status"] == expected
    assert api.get("/v1/queue", headers=auth(alice)).json()["count"] == 0
    listed = api.get("/v1/queue", params={"status": "adjudication"}, headers=auth(sam)).json()
    assert [entry["id"] for entry in listed["data"]] == [item_id]
    by_default = api.get("/v1/queue", headers=auth(sam)).json()["data"]
    assert [(entry["id"], entry["status"]) for entry in by_default] == [(item_id, "adjudication")]
    assert api.post("/v1/queue/claim", headers=auth(sam)).json()["id"] == item_id
    view = api.get(f"/v1/queue/{item_id}", headers=auth(sam)).json()
    assert view["adjudication"] is True and len(view["reviews"]) == 2 and view["judge"] is None
    final = api.post(f"/v1/queue/{item_id}/reviews", headers=auth(sam), json={"label": "unsafe"})
    assert final.status_code == 201
    assert final.json()["status"] == "done" and final.json()["label_source"] == "adjudication"


def test_timeouts_apply_without_a_scheduler(api: httpx.Client, engine: Engine) -> None:
    overdue = _item(engine, external_id="late", hard_timeout=timedelta(seconds=-1))
    lapsed = _item(engine, external_id="lapsed")
    alice_key, alice = reviewer(engine, "alice")
    _, bob = reviewer(engine, "bob")
    _, sam = reviewer(engine, "sam", senior=True)
    with db_session(engine) as db:
        claim_item(db, lapsed, alice_key, lease=timedelta(seconds=-1))

    listed = api.get("/v1/queue", headers=auth(bob)).json()["data"]
    assert [(entry["id"], entry["status"]) for entry in listed] == [(lapsed, "open")]
    refused = api.post(f"/v1/queue/{overdue}/claim", headers=auth(bob))
    assert refused.status_code == 409 and "senior reviewers only" in refused.json()["detail"]
    senior_view = api.get("/v1/queue", headers=auth(sam)).json()["data"]
    assert {entry["id"] for entry in senior_view} == {overdue, lapsed}
    assert next(e for e in senior_view if e["id"] == overdue)["overdue_at"] is not None
    assert api.post(f"/v1/queue/{overdue}/claim", headers=auth(sam)).status_code == 200
    late = api.post(f"/v1/queue/{lapsed}/reviews", headers=auth(alice), json={"label": "yes"})
    assert late.status_code == 409 and "claim queue item" in late.json()["detail"]
