"""Hostile session content renders as inert text in the reviewer and engineer UI (Chromium).

Sessions come from the applications being judged, so they may carry markup meant for the
reviewer's browser: script tags, event handlers, javascript: links, attribute and textarea
breakouts, in messages, tool-call arguments, metadata, rubric text, gate actions and
reasons. Every page that shows them is opened in a real Chromium, which must run none of
it (a planted global stays unset, no dialog opens, no inline script is even attempted)
and must show the markup as text.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from judgeloop.models import CriterionCreate
from tests.conftest import auth
from tests.web_factories import queued_gate, queued_session, ui_key

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = os.environ.get("JUDGELOOP_TEST_CHROMIUM", "/usr/bin/chromium")
TIMEOUT_MS = 15_000

# Each payload would set window.__pwned or open a dialog if the browser ran it.
PAYLOADS = [
    "<script>window.__pwned = 'script'; alert(1)</script>",
    "<img src=x onerror=\"window.__pwned = 'img'; alert(2)\">",
    '<a href="javascript:window.__pwned = \'link\'" id="evil-link">click me</a>',
    '"><svg onload="window.__pwned = \'svg\'"></svg>',
    "</textarea></pre><script>window.__pwned = 'breakout'</script>",
    "javascript:window.__pwned = 'bare'",
]
SCRIPT, IMG, LINK, SVG, BREAKOUT, BARE = PAYLOADS
HOSTILE_CRITERION = CriterionCreate(
    name="harmless",
    kind="binary",
    labels=["yes", f"no{SVG}"],
    description=f"Is it harmless? {SCRIPT}",
    anchors={"yes": IMG, f"no{SVG}": LINK},
)


def hostile_session() -> dict[str, Any]:
    """A session with a payload in every place a reviewer sees."""
    return {
        "source": "hostile-app",
        "external_id": "x-1",
        "messages": [
            {"role": "system", "content": f"System {SCRIPT}"},
            {"role": "user", "content": f"Help {IMG} {LINK}"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "name": "lookup",
                        "arguments": {"query": BREAKOUT, "html": SVG},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "name": "lookup", "content": {"r": IMG}},
            {"role": "assistant", "content": f"Done {BARE}"},
        ],
        "metadata": {"url": BARE, "note": SCRIPT, SVG: "key"},
    }


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One headless Chromium for the module's tests."""
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"Chromium not found at {CHROMIUM}; apt-get install chromium")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


class Watched:
    """A page with every dialog, page error and console error recorded."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.forms = 0
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", self._console)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _console(self, message: Any) -> None:
        # A CSP report means injected script reached the DOM: escaping failed.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(message.text)

    def assert_inert(self, url: str, *, shows: tuple[str, ...] = ()) -> None:
        """Open ``url``; nothing of the payloads ran or became markup; ``shows`` is text."""
        response = self.page.goto(url)
        assert response is not None and response.status == 200, (url, response)
        self.page.wait_for_load_state("load")
        for link in self.page.locator("#evil-link").all():
            link.click()  # were a link rendered as markup, clicking it would run it
        assert self.page.evaluate("typeof window.__pwned") == "undefined", url
        injected = self.page.evaluate(
            """() => ({
                inline_scripts: document.querySelectorAll('script:not([src])').length,
                handlers: [...document.querySelectorAll('*')].filter(
                    e => [...e.attributes].some(a => a.name.startsWith('on'))).length,
                js_links: document.querySelectorAll('[href^="javascript:" i]').length,
                images: document.querySelectorAll('img[src="x"]').length,
            })"""
        )
        assert injected == {"inline_scripts": 0, "handlers": 0, "js_links": 0, "images": 0}, url
        # Every form that changes something carries the CSRF token.
        tokens = self.page.evaluate(
            """() => [...document.querySelectorAll('form')]
                .filter(f => f.method === 'post')
                .map(f => (f.querySelector('input[name=csrf]') || {}).value || '')"""
        )
        assert all(len(token) == 64 for token in tokens), (url, tokens)
        self.forms += len(tokens)
        text = self.page.locator("body").inner_text() + "".join(
            area.input_value() for area in self.page.locator("textarea").all()
        )
        for payload in shows:
            assert payload in text, (url, payload)
        assert self.dialogs == [] and self.errors == [], (url, self.dialogs, self.errors)


@pytest.fixture
def admin_page(chromium: Any, server_url: str, engine: Engine) -> Iterator[Watched]:
    """A signed-in admin (reviewer and engineer pages both open to it)."""
    context = chromium.new_context(base_url=server_url)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto("/ui/login")
    page.fill("#key", ui_key(engine, "admin", f"ad{SCRIPT}"))
    page.click("button[type=submit]")
    page.wait_for_url("**/ui/queue")
    yield Watched(page)
    context.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_hostile_session_is_inert_on_reviewer_pages(admin_page: Watched, engine: Engine) -> None:
    item_id, _version = queued_session(
        engine, criterion=HOSTILE_CRITERION, payload=hostile_session(), judge_label="yes"
    )
    admin_page.assert_inert("/ui/queue")
    admin_page.assert_inert(f"/ui/items/{item_id}", shows=(SCRIPT, IMG, LINK, BREAKOUT, BARE))
    # The review form's own fields come back on the page after submitting.
    page = admin_page.page
    page.click("input[name=label][value=yes]")
    page.fill("#rationale", f"Because {BREAKOUT}")
    page.fill("#correction", IMG)
    page.click("#review-form button[type=submit]")
    page.wait_for_selector("#judge-verdict")
    admin_page.assert_inert(f"/ui/items/{item_id}", shows=(SCRIPT, IMG))
    assert admin_page.forms >= 4  # sign out, claim next, review, release


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_hostile_gate_and_judge_are_inert_on_gate_and_engineer_pages(
    admin_page: Watched, engine: Engine, api: httpx.Client
) -> None:
    _item, version = queued_session(
        engine, payload=hostile_session(), judge_name=f"judge{IMG}", judge_label="yes"
    )
    state = {"messages": [{"role": "user", "content": SCRIPT}], "context": {"note": LINK}}
    gate_id, gate_item = queued_gate(
        engine, action_name=f"delete{SVG}", arguments={"id": BREAKOUT}, state=state
    )
    admin_page.assert_inert(f"/ui/items/{gate_item}", shows=(f"delete{SVG}", SCRIPT))
    # A rejection reason shows on the engineers' gate dashboard.
    other_gate, _ = queued_gate(engine, action_name="drop_table", arguments={})
    rejected = api.post(
        f"/v1/gates/{other_gate}/decision",
        json={"action": "reject", "reason": f"No {IMG}"},
        headers=auth(ui_key(engine, "reviewer", "rita")),
    )
    assert rejected.status_code == 200, rejected.text
    admin_page.assert_inert("/ui/gates", shows=(f"No {IMG}",))
    admin_page.assert_inert("/ui/judges", shows=(f"judge{IMG}",))
    for url in (f"/ui/judges/{version}", "/ui/drift", "/ui/agreement", "/ui/load"):
        admin_page.assert_inert(url)
    assert gate_id != other_gate
    assert admin_page.forms >= 5  # sign out on each page, approve/reject/modify on the gate
