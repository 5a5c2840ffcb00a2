"""The web UI over plain HTTP: sign-in, cookies, roles, CSRF, and pages that render."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import select

from judgeloop.models import HumanLabel, JudgeVersion
from judgeloop.store import authenticate, db_session, revoke_key
from judgeloop.web.auth import COOKIE_NAME, csrf_token
from tests.web_factories import JUDGE_CONFIDENCE, JUDGE_RATIONALE, calibrate, queued_session, ui_key


@pytest.fixture
def browser(server_url: str) -> Iterator[httpx.Client]:
    """A client that keeps cookies and does not follow redirects."""
    with httpx.Client(base_url=server_url, timeout=30) as client:
        yield client


def sign_in(client: httpx.Client, key: str) -> httpx.Response:
    return client.post("/ui/login", data={"key": key})


def test_pages_redirect_to_login_without_a_key(browser: httpx.Client) -> None:
    for path in ("/ui/queue", "/ui/judges", "/ui/items/1", "/ui/load"):
        response = browser.get(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/ui/login?next=")
    login = browser.get("/ui/login")
    assert login.status_code == 200
    assert 'name="key"' in login.text
    assert "default-src 'self'" in login.headers["content-security-policy"]


def test_sign_in_sets_a_strict_httponly_cookie_and_lands_by_role(
    browser: httpx.Client, engine: Engine
) -> None:
    reviewer = ui_key(engine, "reviewer", "rita")
    response = sign_in(browser, reviewer)
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/queue"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
    page = browser.get("/ui/queue")
    assert page.status_code == 200
    assert "rita" in page.text

    engineer = httpx.Client(base_url=str(browser.base_url), timeout=30)
    with engineer:
        assert sign_in(engineer, ui_key(engine, "engineer", "erin")).headers["location"] == (
            "/ui/judges"
        )


def test_sign_in_goes_back_to_the_requested_page_but_never_off_site(
    browser: httpx.Client, engine: Engine
) -> None:
    key = ui_key(engine, "engineer", "erin")
    response = browser.post("/ui/login", data={"key": key, "next": "/ui/load"})
    assert response.headers["location"] == "/ui/load"
    browser.cookies.clear()
    response = browser.post("/ui/login", data={"key": key, "next": "//evil.example/ui/x"})
    assert response.headers["location"] == "/ui/judges"


def test_bad_and_pipeline_keys_are_refused(browser: httpx.Client, engine: Engine) -> None:
    response = sign_in(browser, "jl_000000000000_not-a-real-key")
    assert response.status_code == 401
    assert "unknown or revoked" in response.text
    assert COOKIE_NAME not in response.headers.get("set-cookie", "")
    response = sign_in(browser, ui_key(engine, "pipeline", "etl"))
    assert response.status_code == 403
    assert "API only" in response.text


def test_a_revoked_key_is_signed_out(browser: httpx.Client, engine: Engine) -> None:
    key = ui_key(engine, "reviewer", "rita")
    sign_in(browser, key)
    assert browser.get("/ui/queue").status_code == 200
    with db_session(engine) as db:
        row = authenticate(db, key)
        assert row is not None and row.id is not None
        revoke_key(db, row.id, actor="test")
    response = browser.get("/ui/queue")
    assert response.status_code == 303
    assert "expired=1" in response.headers["location"]


def test_reviewers_get_a_403_page_on_engineer_pages(browser: httpx.Client, engine: Engine) -> None:
    sign_in(browser, ui_key(engine, "reviewer", "rita"))
    for path in ("/ui/judges", "/ui/compare", "/ui/drift", "/ui/agreement", "/ui/load"):
        response = browser.get(path)
        assert response.status_code == 403, path
        assert "Not allowed" in response.text
    browser.cookies.clear()
    sign_in(browser, ui_key(engine, "engineer", "erin"))
    assert browser.get("/ui/queue").status_code == 403


def test_forms_without_the_csrf_token_or_from_another_origin_are_refused(
    browser: httpx.Client, engine: Engine
) -> None:
    item_id, _version = queued_session(engine)
    key = ui_key(engine, "reviewer", "rita")
    sign_in(browser, key)
    assert browser.get(f"/ui/items/{item_id}").status_code == 200  # claims it
    review = {"label": "yes", "rationale": "fine"}
    assert browser.post(f"/ui/items/{item_id}/review", data=review).status_code == 403
    forged = {**review, "csrf": "0" * 64}
    assert browser.post(f"/ui/items/{item_id}/review", data=forged).status_code == 403
    genuine = {**review, "csrf": csrf_token(key)}
    cross_site = browser.post(
        f"/ui/items/{item_id}/review", data=genuine, headers={"Origin": "http://evil.example"}
    )
    assert cross_site.status_code == 403
    with db_session(engine) as db:
        assert db.exec(select(HumanLabel)).all() == []
    assert browser.post(f"/ui/items/{item_id}/review", data=genuine).status_code == 303
    with db_session(engine) as db:
        [label] = db.exec(select(HumanLabel)).all()
        assert (label.value, label.annotator, label.source) == ("yes", "rita", "review")


def test_item_page_is_blind_until_submitted(browser: httpx.Client, engine: Engine) -> None:
    item_id, _version = queued_session(engine, judge_label="no")
    key = ui_key(engine, "reviewer", "rita")
    sign_in(browser, key)
    before = browser.get(f"/ui/items/{item_id}").text
    assert JUDGE_RATIONALE not in before
    assert str(JUDGE_CONFIDENCE) not in before
    assert "judge-verdict" not in before
    assert "lookup_order" in before and "NW-1" in before  # the tool call and its arguments
    browser.post(f"/ui/items/{item_id}/review", data={"label": "yes", "csrf": csrf_token(key)})
    after = browser.get(f"/ui/items/{item_id}").text
    assert JUDGE_RATIONALE in after
    assert re.search(r'id="judge-label">no<', after)
    assert "you disagree" in after


def test_someone_elses_claim_is_a_clear_conflict(browser: httpx.Client, engine: Engine) -> None:
    item_id, _version = queued_session(engine)
    sign_in(browser, ui_key(engine, "reviewer", "rita"))
    assert browser.get(f"/ui/items/{item_id}").status_code == 200
    with httpx.Client(base_url=str(browser.base_url), timeout=30) as other:
        sign_in(other, ui_key(engine, "reviewer", "sam"))
        response = other.get(f"/ui/items/{item_id}")
        assert response.status_code == 409
        assert "You cannot review this item now" in response.text
        assert "claimed by &#39;rita&#39;" in response.text
        assert 'id="review-form"' not in response.text


def test_engineer_pages_render(browser: httpx.Client, engine: Engine) -> None:
    _item_id, version = queued_session(engine)
    calibrate(engine, version)
    sign_in(browser, ui_key(engine, "engineer", "erin"))
    judges = browser.get("/ui/judges")
    assert judges.status_code == 200 and "resolved-judge" in judges.text
    report = browser.get(f"/ui/judges/{version}")
    assert report.status_code == 200
    assert report.text.count("<svg") == 3
    download = browser.get(f"/ui/judges/{version}/report.html")
    assert "attachment" in download.headers["content-disposition"] and "<svg" in download.text
    for path in ("/ui/drift", "/ui/agreement", "/ui/load", "/ui/compare"):
        assert browser.get(path).status_code == 200, path
    assert "low_confidence" in browser.get("/ui/load").text
    assert browser.get("/ui/judges/no-such-version").status_code == 404


def test_judges_page_asks_to_recalibrate_when_drift_alarms(
    browser: httpx.Client, engine: Engine
) -> None:
    from judgeloop.store import observe_label
    from judgeloop.store.judges import activate_judge_version

    _item_id, version = queued_session(engine)
    calibrate(engine, version)
    sign_in(browser, ui_key(engine, "engineer", "erin"))
    with db_session(engine) as db:
        activate_judge_version(db, version, actor="test")
        criterion_id = db.get(JudgeVersion, version).criterion_id  # type: ignore[union-attr]
    assert "needs recalibration" not in browser.get("/ui/judges").text
    with db_session(engine) as db:
        # the judge says "no" far more often than on its calibration data: label PSI alarms
        for _ in range(60):
            observe_label(db, criterion_id, "no", {"yes": 0.9, "no": 0.1})
    page = browser.get("/ui/judges").text
    assert "resolved-judge needs recalibration" in page and "label_psi" in page
    assert "judgeloop recalibrate --judge resolved-judge" in page


def test_a_long_queue_says_it_shows_only_the_most_urgent(
    browser: httpx.Client, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    import judgeloop.web.reviewer as reviewer_pages

    for index in range(3):
        queued_session(engine, external_id=f"s-{index}")
    sign_in(browser, ui_key(engine, "reviewer", "rita"))
    assert "3 items" in browser.get("/ui/queue").text
    monkeypatch.setattr(reviewer_pages, "QUEUE_LIMIT", 2)
    page = browser.get("/ui/queue").text
    assert "the 2 most urgent items" in page and "More items are waiting" in page


def test_logout_forgets_the_key(browser: httpx.Client, engine: Engine) -> None:
    key = ui_key(engine, "admin", "ada")
    sign_in(browser, key)
    assert browser.get("/ui/queue").status_code == 200
    response = browser.post("/ui/logout", data={"csrf": csrf_token(key)})
    assert response.status_code == 303
    assert browser.get("/ui/queue").status_code == 303


def test_audit_reviews_show_on_the_online_agreement_page(
    browser: httpx.Client, engine: Engine
) -> None:
    item_id, version = queued_session(engine, judge_label="yes", reasons=("audit",), priority=100)
    with db_session(engine) as db:
        judge_version = db.get(JudgeVersion, version)
        assert judge_version is not None
        judge_version.active = True
        db.add(judge_version)
        db.commit()
    engineer = ui_key(engine, "admin", "ada")
    sign_in(browser, engineer)
    empty = browser.get("/ui/agreement")
    assert 'id="no-audit"' in empty.text
    browser.get(f"/ui/items/{item_id}")
    browser.post(f"/ui/items/{item_id}/review", data={"label": "yes", "csrf": csrf_token(engineer)})
    page = browser.get("/ui/agreement")
    assert page.status_code == 200
    assert 'id="no-audit"' not in page.text
    assert "over 1 audit label" in page.text and "<svg" in page.text


def test_compare_explains_what_is_missing(browser: httpx.Client, engine: Engine) -> None:
    _item_id, version = queued_session(engine)
    sign_in(browser, ui_key(engine, "engineer", "erin"))
    response = browser.get("/ui/compare", params={"first": version, "second": version})
    assert response.status_code == 422
    assert 'role="alert"' in response.text
    missing = browser.get("/ui/compare", params={"first": "nope", "second": version})
    assert missing.status_code == 422 and "nope" in missing.text
