"""Who may call what: every route of the app (API and web) against every role and no key.

The table below is the expectation; the app's own route list is the truth. A route added
without a row here, or a row whose route is gone, fails ``test_every_route_has_a_row``.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import httpx
import pytest
from fastapi.routing import iter_route_contexts
from sqlalchemy import Engine, text
from sqlmodel import select

from judgeloop.api import create_app
from judgeloop.config import Settings
from judgeloop.gates import evaluate, load_rules
from judgeloop.models import ApiKey
from judgeloop.store import authenticate, db_session, gate_public, open_gate
from judgeloop.web.auth import COOKIE_NAME, csrf_token
from tests.conftest import REPO_ROOT, auth

PUBLIC = "no key"
ALL = frozenset({"pipeline", "reviewer", "engineer", "admin"})
PIPELINE = frozenset({"pipeline", "engineer", "admin"})
REVIEWER = frozenset({"reviewer", "admin"})
ENGINEER = frozenset({"engineer", "admin"})
ADMIN = frozenset({"admin"})
UI = frozenset({"reviewer", "engineer", "admin"})
EVERYONE = frozenset({PUBLIC, *ALL})

# (method, route path) -> who may call it. Pipelines never reach labels, reviews or the
# queue; reviewers reach the queue and the gates they decide, nothing else of the data;
# only admins manage keys. Web pages admit reviewer, engineer and admin keys only.
ROUTE_ROLES: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/openapi.json"): EVERYONE,
    ("GET", "/docs"): EVERYONE,
    ("GET", "/docs/oauth2-redirect"): EVERYONE,
    ("GET", "/redoc"): EVERYONE,
    ("GET", "/healthz"): EVERYONE,
    ("GET", "/v1/healthz"): ALL,
    ("POST", "/v1/sessions"): PIPELINE,
    ("GET", "/v1/sessions/{session_id}"): PIPELINE,
    ("POST", "/v1/labels"): ENGINEER,
    ("GET", "/v1/criteria"): ALL,
    ("POST", "/v1/criteria"): ENGINEER,
    ("GET", "/v1/judges"): ENGINEER,
    ("GET", "/v1/judges/compare"): ENGINEER,
    ("GET", "/v1/judges/{name}/versions/{version}/calibration"): ENGINEER,
    ("GET", "/v1/keys"): ADMIN,
    ("POST", "/v1/keys"): ADMIN,
    ("DELETE", "/v1/keys/{key_id}"): ADMIN,
    ("GET", "/v1/queue"): REVIEWER,
    ("GET", "/v1/queue/load"): REVIEWER,
    ("POST", "/v1/queue/claim"): REVIEWER,
    ("POST", "/v1/queue/{item_id}/claim"): REVIEWER,
    ("POST", "/v1/queue/{item_id}/release"): REVIEWER,
    ("GET", "/v1/queue/{item_id}"): REVIEWER,
    ("POST", "/v1/queue/{item_id}/reviews"): REVIEWER,
    ("POST", "/v1/judge"): PIPELINE,
    ("POST", "/v1/gates"): PIPELINE,
    # The agent that opened a gate polls it; reviewers read the gates that reach their queue
    # (test_reviewers_read_only_the_gates_that_reach_their_queue).
    ("GET", "/v1/gates/{gate_id}"): ALL,
    ("POST", "/v1/gates/{gate_id}/decision"): REVIEWER,
    ("GET", "/ui"): UI,
    ("GET", "/ui/"): UI,
    ("GET", "/ui/login"): EVERYONE,
    ("POST", "/ui/login"): EVERYONE,
    ("POST", "/ui/logout"): UI,
    ("GET", "/ui/queue"): REVIEWER,
    ("POST", "/ui/queue/next"): REVIEWER,
    ("GET", "/ui/items/{item_id}"): REVIEWER,
    ("POST", "/ui/items/{item_id}/review"): REVIEWER,
    ("POST", "/ui/items/{item_id}/release"): REVIEWER,
    ("POST", "/ui/items/{item_id}/gate"): REVIEWER,
    ("GET", "/ui/gates"): ENGINEER,
    ("GET", "/ui/judges"): ENGINEER,
    ("GET", "/ui/judges/{version}"): ENGINEER,
    ("GET", "/ui/judges/{version}/report.html"): ENGINEER,
    ("GET", "/ui/compare"): ENGINEER,
    ("GET", "/ui/drift"): ENGINEER,
    ("GET", "/ui/agreement"): ENGINEER,
    ("GET", "/ui/load"): ENGINEER,
    ("GET", "/ui/static/ui.css"): EVERYONE,
}
IDENTITIES = (PUBLIC, "pipeline", "reviewer", "engineer", "admin")
# Path parameters: ids that exist nowhere (999, never key 1: the admin would revoke it).
SAMPLE_PARAMETERS = {
    "session_id": "999",
    "key_id": "999",
    "item_id": "999",
    "gate_id": "999",
    "name": "x",
    "version": "y",
}
# The role table must hold for these web forms whatever the form says; the CSRF tests
# below post each of them.
WEB_FORMS = sorted(p for m, p in ROUTE_ROLES if m == "POST" and p.startswith("/ui/"))


def app_routes(settings: Settings) -> set[tuple[str, str]]:
    """Every (method, path) the app serves, static files as one sample file."""
    app = create_app(settings)
    routes = set()
    for route in iter_route_contexts(app.routes):
        if route.path == "/ui/static":
            routes.add(("GET", "/ui/static/ui.css"))
            continue
        for method in route.methods or ():
            if method != "HEAD":
                routes.add((method, route.path))
    return routes


def cookie(key: str) -> dict[str, str]:
    """Headers that present ``key`` as the UI's sign-in cookie."""
    return {"Cookie": f"{COOKIE_NAME}={key}"}


def concrete(path: str) -> str:
    """``path`` with its parameters filled in."""
    return path.format(**SAMPLE_PARAMETERS)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_route_has_a_row(settings: Settings) -> None:
    served = app_routes(settings)
    assert served - ROUTE_ROLES.keys() == set(), "routes without an expectation"
    assert ROUTE_ROLES.keys() - served == set(), "expectations for routes that are gone"


def _api_outcome(api: httpx.Client, method: str, path: str, key: str | None) -> str:
    headers = auth(key) if key else {}
    status = api.request(method, concrete(path), headers=headers).status_code
    if status == 401:
        return "no key"
    if status == 403:
        return "forbidden"
    return "allowed"


def _web_outcome(api: httpx.Client, method: str, path: str, key: str | None) -> str:
    data = {"csrf": csrf_token(key)} if key and method == "POST" else None
    response = api.request(
        method,
        concrete(path),
        headers=cookie(key) if key else {},
        data=data,
        follow_redirects=False,
    )
    location = response.headers.get("location", "")
    if response.status_code == 303 and location.startswith("/ui/login"):
        # Signing out also lands there, but clears the cookie of a key that is still good.
        signed_out = "set-cookie" in response.headers and "expired=1" not in location
        return "allowed" if signed_out else "no key"
    if response.status_code == 403:
        return "forbidden"
    return "allowed"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_route_against_every_role(api: httpx.Client, keys: dict[str, str]) -> None:
    """Allowed identities get past the checks; others get 401/login, or 403 once known."""
    mismatches = []
    checked = 0
    for (method, path), allowed in sorted(ROUTE_ROLES.items()):
        web = path.startswith("/ui") and path not in ("/ui/login", "/ui/static/ui.css")
        for identity in IDENTITIES:
            key = None if identity == PUBLIC else keys[identity]
            outcome = (_web_outcome if web else _api_outcome)(api, method, path, key)
            if identity in allowed:
                expected = "allowed"
            elif identity == PUBLIC or (web and identity == "pipeline"):
                expected = "no key"  # a pipeline key cannot sign in to the UI at all
            else:
                expected = "forbidden"
            checked += 1
            if outcome != expected:
                mismatches.append((method, path, identity, expected, outcome))
    assert mismatches == []
    assert checked == len(ROUTE_ROLES) * len(IDENTITIES)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_keys_authenticate_only_where_they_belong(api: httpx.Client, keys: dict[str, str]) -> None:
    """The API ignores the UI cookie (no cross-site request rides on it), the UI the header."""
    cookie_only = api.get("/v1/keys", headers=cookie(keys["admin"]))
    assert cookie_only.status_code == 401
    header_only = api.get("/ui/queue", headers=auth(keys["admin"]), follow_redirects=False)
    assert header_only.status_code == 303
    assert header_only.headers["location"].startswith("/ui/login")


def test_reviewers_read_only_the_gates_that_reach_their_queue(
    api: httpx.Client, keys: dict[str, str], engine: Engine
) -> None:
    rules = load_rules(REPO_ROOT / "judges" / "gates.yaml")
    with db_session(engine) as db:
        gates = {
            name: gate_public(
                db,
                open_gate(
                    db,
                    action_name=name,
                    arguments={},
                    state={"messages": []},
                    callback_url=None,
                    evaluation=evaluate(name, {}, rules),
                    actor="test",
                ),
            )
            for name in ("lookup_order", "delete_customer")
        }
        db.commit()
    green, red = gates["lookup_order"], gates["delete_customer"]
    assert (green.tier, green.queue_item_id, red.tier) == ("green", None, "red")
    refused = api.get(f"/v1/gates/{green.id}", headers=auth(keys["reviewer"]))
    assert refused.status_code == 403 and "decided by rule (green)" in refused.json()["detail"]
    assert api.get(f"/v1/gates/{red.id}", headers=auth(keys["reviewer"])).status_code == 200
    for role in ("pipeline", "engineer", "admin"):
        assert api.get(f"/v1/gates/{green.id}", headers=auth(keys[role])).status_code == 200


# ----------------------------------------------------------------------------- keys


def test_keys_are_stored_as_sha256_only(
    api: httpx.Client, keys: dict[str, str], engine: Engine
) -> None:
    created = api.post(
        "/v1/keys", json={"name": "ci", "role": "pipeline"}, headers=auth(keys["admin"])
    )
    assert created.status_code == 201
    plaintext = created.json()["key"]
    with db_session(engine) as db:
        row = db.exec(select(ApiKey).where(ApiKey.name == "ci")).one()
        assert row.key_hash == hashlib.sha256(plaintext.encode()).hexdigest()
        # The secret is nowhere in the database: not in a key row, not in the audit trail.
        secret = plaintext.rsplit("_", 1)[1]
        for table in ("api_keys", "audit_events"):
            rows = db.exec(text(f"SELECT * FROM {table}")).all()  # type: ignore[call-overload]
            assert not any(secret in str(value) for r in rows for value in r), table
    listed = api.get("/v1/keys", headers=auth(keys["admin"])).text
    assert secret not in listed and "key_hash" not in listed


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_keys_are_compared_with_compare_digest(
    engine: Engine, keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hash comparison is hmac.compare_digest's, whose time does not depend on the data."""
    compared: list[tuple[Any, Any]] = []
    original = hmac.compare_digest

    def recording(a: Any, b: Any) -> bool:
        compared.append((a, b))
        return original(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)
    good = keys["reviewer"]
    forged = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    with db_session(engine) as db:
        assert authenticate(db, good) is not None
        assert authenticate(db, forged) is None
    stored = hashlib.sha256(good.encode()).hexdigest()
    assert (stored, stored) in compared
    assert (stored, hashlib.sha256(forged.encode()).hexdigest()) in compared


def test_a_revoked_key_is_refused_at_once_on_api_and_web(
    api: httpx.Client, keys: dict[str, str], engine: Engine
) -> None:
    reviewer = keys["reviewer"]
    assert api.get("/v1/queue", headers=auth(reviewer)).status_code == 200
    page = api.get("/ui/queue", headers=cookie(reviewer), follow_redirects=False)
    assert page.status_code == 200
    with db_session(engine) as db:
        key_id = db.exec(select(ApiKey.id).where(ApiKey.name == "test-reviewer")).one()
    revoked = api.delete(f"/v1/keys/{key_id}", headers=auth(keys["admin"]))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None

    refused = api.get("/v1/queue", headers=auth(reviewer))
    assert refused.status_code == 401 and refused.json()["detail"] == "invalid API key"
    signed_out = api.get("/ui/queue", headers=cookie(reviewer), follow_redirects=False)
    assert signed_out.status_code == 303
    assert signed_out.headers["location"].startswith("/ui/login?")
    assert "expired=1" in signed_out.headers["location"]
    form = api.post(
        "/ui/queue/next",
        headers=cookie(reviewer),
        data={"csrf": csrf_token(reviewer)},
        follow_redirects=False,
    )
    assert form.status_code == 303 and form.headers["location"].startswith("/ui/login")
    login = api.post("/ui/login", data={"key": reviewer}, follow_redirects=False)
    assert login.status_code == 401


# ----------------------------------------------------------------------------- web forms


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_web_form_needs_its_csrf_token(api: httpx.Client, keys: dict[str, str]) -> None:
    """Each form, posted by an allowed user without, with a wrong or another key's token: 403."""
    refused = []
    forms = [p for p in WEB_FORMS if p != "/ui/login"]  # signing in has no key to derive from
    assert len(forms) >= 5
    admin = keys["admin"]
    tokens = {
        "missing": None,
        "empty": "",
        "wrong": "0" * 64,
        "another key's": csrf_token(keys["reviewer"]),
        "truncated": csrf_token(admin)[:-1],
    }
    for path in forms:
        for name, token in tokens.items():
            data = {"csrf": token} if token is not None else {"label": "yes"}
            response = api.post(
                concrete(path), headers=cookie(admin), data=data, follow_redirects=False
            )
            if response.status_code == 403 and "security token" in response.text:
                refused.append((path, name))
    assert len(refused) == len(forms) * len(tokens), refused


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_forms_posted_from_another_origin_are_refused(
    api: httpx.Client, keys: dict[str, str]
) -> None:
    admin = keys["admin"]
    for path in WEB_FORMS:
        data = {"csrf": csrf_token(admin), "key": admin}
        response = api.post(
            concrete(path),
            headers={**cookie(admin), "Origin": "https://evil.example"},
            data=data,
            follow_redirects=False,
        )
        assert response.status_code == 403, (path, response.status_code)
        assert "another site" in response.text


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_session_cookie_is_httponly_samesite_and_scoped(
    api: httpx.Client, keys: dict[str, str]
) -> None:
    login = api.post("/ui/login", data={"key": keys["reviewer"]}, follow_redirects=False)
    assert login.status_code == 303
    set_cookie = login.headers["set-cookie"]
    attributes = {part.strip().split("=")[0].lower(): part for part in set_cookie.split(";")}
    assert set_cookie.startswith(f"{COOKIE_NAME}=")
    assert "httponly" in attributes
    assert attributes["samesite"].strip().lower() == "samesite=strict"
    assert attributes["path"].strip() == "Path=/ui"

    logout = api.post(
        "/ui/logout",
        headers=cookie(keys["reviewer"]),
        data={"csrf": csrf_token(keys["reviewer"])},
        follow_redirects=False,
    )
    cleared = logout.headers["set-cookie"].lower()
    assert 'judgeloop_key=""' in cleared or "max-age=0" in cleared
    assert "httponly" in cleared and "samesite=strict" in cleared and "path=/ui" in cleared


# ----------------------------------------------------------------------------- headers


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_response_carries_security_headers(api: httpx.Client, keys: dict[str, str]) -> None:
    """JSON, errors, redirects, static files and pages: nosniff, no framing, a CSP."""
    signed_in = cookie(keys["reviewer"])
    responses = {
        "json": api.get("/v1/criteria", headers=auth(keys["reviewer"])),
        "401": api.get("/v1/criteria"),
        "413": api.post("/v1/sessions", content=b"x" * 300_000, headers=auth(keys["pipeline"])),
        "422": api.post(
            "/v1/sessions",
            content=b"[" * 100 + b"]" * 100,
            headers={**auth(keys["pipeline"]), "content-type": "application/json"},
        ),
        "redirect": api.get("/ui/queue", follow_redirects=False),
        "login": api.get("/ui/login"),
        "page": api.get("/ui/queue", headers=signed_in),
        "403 page": api.get("/ui/judges", headers=signed_in),
        "static": api.get("/ui/static/ui.js"),
        "docs": api.get("/docs"),
    }
    for name, response in responses.items():
        headers = response.headers
        assert headers.get("x-content-type-options") == "nosniff", name
        assert headers.get("x-frame-options") == "DENY", name
        assert "frame-ancestors 'none'" in headers.get("content-security-policy", ""), name
    for name in ("login", "page", "403 page", "redirect", "static"):
        policy = responses[name].headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy, name
