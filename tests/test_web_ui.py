"""The web UI in a real headless Chromium (Debian's), driven by Playwright.

A whole review: sign in with a reviewer key, open the queue, claim, label with the keyboard,
submit; the label is a HumanLabel and only then does the page show the judge's verdict.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from judgeloop.models import HumanLabel, QueueItem, Review
from judgeloop.store import db_session
from tests.factories import TONE
from tests.web_factories import JUDGE_CONFIDENCE, JUDGE_RATIONALE, calibrate, queued_session, ui_key

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = os.environ.get("JUDGELOOP_TEST_CHROMIUM", "/usr/bin/chromium")
TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    """One headless Chromium for the module's tests (a fresh context per test)."""
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"Chromium not found at {CHROMIUM}; apt-get install chromium")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: sync_api.Browser, server_url: str) -> Iterator[sync_api.Page]:
    """A page in a fresh browser context (its own cookies) on the live test server."""
    context = chromium.new_context(base_url=server_url)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: _collect_console_error(message, errors))
    yield page
    context.close()
    assert errors == [], f"the browser reported errors: {errors}"


def _collect_console_error(message: sync_api.ConsoleMessage, errors: list[str]) -> None:
    # 401/403/409 answers are part of the tests; script and CSP errors are bugs.
    if message.type == "error" and not message.text.startswith("Failed to load resource"):
        errors.append(message.text)


def sign_in(page: sync_api.Page, key: str) -> None:
    page.goto("/ui/login")
    page.fill("#key", key)
    page.click("button[type=submit]")


def test_a_whole_review_from_login_to_label(page: sync_api.Page, engine: Engine) -> None:
    item_id, _version = queued_session(engine, judge_label="no")
    queued_session(engine, external_id="s-2", criterion=TONE, reasons=("drift:novel_session",))
    sign_in(page, ui_key(engine, "reviewer", "rita"))
    page.wait_for_url("**/ui/queue")
    assert page.locator("table.queue tbody tr").count() == 2

    # Stay in one mode: filter to the resolved criterion, then claim the next item in it.
    page.click("a[data-facet=criterion]:has-text('resolved')")
    page.wait_for_url("**/ui/queue?criterion=resolved*")
    assert page.locator("table.queue tbody tr").count() == 1
    page.keyboard.press("n")
    page.wait_for_url(f"**/ui/items/{item_id}?criterion=resolved")

    # Blind review: nothing of the judge's verdict in the HTML before submitting.
    html = page.content()
    assert JUDGE_RATIONALE not in html
    assert str(JUDGE_CONFIDENCE) not in html
    assert page.locator("#judge-verdict").count() == 0
    # The whole session: messages by role, the tool call with its arguments, the result.
    assert page.locator("article.message").count() == 5
    assert page.locator(".tool-call").first.inner_text().count("NW-1") == 1
    assert "shipped" in page.locator("article.role-tool").inner_text()
    assert "fixed" in page.locator(".rubric").inner_text()  # the anchors

    # Label with the keyboard: 1 picks the first label ("yes"), Ctrl+Enter submits from a box.
    page.keyboard.press("1")
    assert page.locator("input[name=label][value=yes]").is_checked()
    page.fill("#rationale", "The order status was given.")
    page.focus("#rationale")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#judge-verdict")

    assert page.locator("#your-label").inner_text() == "yes"
    assert page.locator("#judge-label").inner_text() == "no"
    assert page.locator("#judge-confidence").inner_text() == f"{JUDGE_CONFIDENCE:.3f}"
    assert JUDGE_RATIONALE in page.content()
    with db_session(engine) as db:
        [label] = db.exec(select(HumanLabel)).all()
        assert (label.value, label.annotator, label.source) == ("yes", "rita", "review")
        assert label.rationale == "The order status was given."
        item = db.get(QueueItem, item_id)
        assert item is not None and item.status == "done"

    # n after submitting: the next item in the same filter; there is none left.
    page.keyboard.press("n")
    page.wait_for_url("**/ui/queue?criterion=resolved&notice=empty")
    assert "Nothing left to claim" in page.content()


def test_ordinal_scale_clicks_and_a_correction(page: sync_api.Page, engine: Engine) -> None:
    item_id, _version = queued_session(engine, criterion=TONE, judge_label="2")
    sign_in(page, ui_key(engine, "reviewer", "rita"))
    page.goto("/ui/queue")
    page.click(f"a.open-item[href^='/ui/items/{item_id}']")
    page.wait_for_selector("#review-form")
    assert page.locator("fieldset.kind-ordinal input[name=label]").count() == 5
    page.click("input[name=label][value='4']")
    page.fill("#correction", "Sorry for the wait! It shipped yesterday.")
    page.click("#review-form button[type=submit]")
    page.wait_for_selector("#judge-verdict")
    with db_session(engine) as db:
        [review] = db.exec(select(Review)).all()
        assert (review.label, review.correction) == (
            "4",
            "Sorry for the wait! It shipped yesterday.",
        )


def test_a_bad_key_shows_an_error(page: sync_api.Page) -> None:
    sign_in(page, "jl_000000000000_wrong")
    page.wait_for_selector("#login-error")
    assert "unknown or revoked" in page.locator("#login-error").inner_text()
    page.goto("/ui/queue")
    assert "/ui/login" in page.url


def test_engineer_pages_and_reviewer_refusal(
    page: sync_api.Page, chromium: sync_api.Browser, server_url: str, engine: Engine
) -> None:
    _item_id, version = queued_session(engine)
    calibrate(engine, version)
    sign_in(page, ui_key(engine, "engineer", "erin"))
    page.wait_for_url("**/ui/judges")
    assert "resolved-judge" in page.locator("table.judges").inner_text()
    page.click("a.report-link")
    page.wait_for_url(f"**/ui/judges/{version}")
    assert page.locator("figure svg").count() == 3
    for path, marker in (
        ("/ui/drift", "Drift"),
        ("/ui/agreement", "Online agreement"),
        ("/ui/compare", "Compare judge versions"),
        ("/ui/load", "Queue load"),
    ):
        response = page.goto(path)
        assert response is not None and response.status == 200, path
        assert marker in page.locator("h1").inner_text()
    assert page.locator("figure svg").count() == 1  # the load by reason

    reviewer_context = chromium.new_context(base_url=server_url)
    try:
        reviewer = reviewer_context.new_page()
        sign_in(reviewer, ui_key(engine, "reviewer", "rita"))
        reviewer.wait_for_url("**/ui/queue")
        response = reviewer.goto("/ui/judges")
        assert response is not None and response.status == 403
        assert "Not allowed" in reviewer.locator("h1").inner_text()
    finally:
        reviewer_context.close()
