"""Property-based API tests from the OpenAPI spec: no 5xx, every answer matches its schema.

schemathesis generates requests for each operation of the live server's spec, sent with a
key of a role allowed to call it (tests/test_roles.py), so the requests reach the handlers
instead of stopping at 401/403. Examples per operation are few to keep CI short; the
database is SQLite and PostgreSQL, which refuse different things.
"""

from __future__ import annotations

from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
)
from sqlalchemy import Engine
from sqlmodel import col, select

from judgeloop.models import ApiKey
from judgeloop.store import add_criteria, db_session
from judgeloop.store.keys import hash_key
from tests.conftest import auth
from tests.factories import RESOLVED, TONE, session_payload
from tests.test_roles import ROUTE_ROLES

# Valid requests per operation, on SQLite and PostgreSQL (fewer: only storage differs).
EXAMPLES_PER_OPERATION = {"sqlite": 8, "postgresql": 5}
# Requests that break the schema on purpose (SQLite only: they never reach storage); the
# answer must be a 4xx, never a 5xx.
INVALID_EXAMPLES_PER_OPERATION = 3
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
# The least powerful role allowed to call an operation sends it.
ROLE_ORDER = ("pipeline", "reviewer", "engineer", "admin")


def role_for(label: str) -> str:
    """The first role of ROLE_ORDER that the role table admits to ``label`` (METHOD path)."""
    method, path = label.split(" ", 1)
    allowed = ROUTE_ROLES[(method, path)]
    return next(role for role in ROLE_ORDER if role in allowed)


def _tame(case: Any) -> None:
    """Keep generated requests from waiting or calling out: no long-polls, no callbacks."""
    if isinstance(case.query, dict) and "wait" in case.query:
        case.query["wait"] = 0
    if isinstance(case.body, dict):
        case.body.pop("callback_url", None)


def _seed(api: httpx.Client, keys: dict[str, str], engine: Engine) -> None:
    """Some rows for generated ids to hit: criteria, a session, a pending gate."""
    with db_session(engine) as db:
        add_criteria(db, [RESOLVED, TONE], actor="test")
    api.post("/v1/sessions", json=session_payload(), headers=auth(keys["pipeline"]))
    api.post(
        "/v1/gates",
        json={"action": {"name": "issue_refund", "arguments": {"amount": 900}}},
        headers=auth(keys["pipeline"]),
    )


def test_every_operation_holds_its_schema(
    api: httpx.Client, server_url: str, keys: dict[str, str], engine: Engine
) -> None:
    _seed(api, keys, engine)
    dialect = engine.dialect.name
    schema = schemathesis.openapi.from_url(f"{server_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    tried: dict[str, int] = {}
    failures: dict[str, str] = {}
    for operation in operations:
        label = f"{operation.method.upper()} {operation.path}"
        headers = auth(keys[role_for(label)])
        try:
            tried[label] = _fuzz(operation, server_url, headers, EXAMPLES_PER_OPERATION[dialect])
            if dialect == "sqlite":
                tried[label] += _fuzz(
                    operation, server_url, headers, INVALID_EXAMPLES_PER_OPERATION, valid=False
                )
        except (Exception, BaseExceptionGroup) as failure:  # one report for all operations
            failures[label] = str(failure)[:2000]
        # Revoking a fixture key is allowed; put the keys back for the next operation.
        if label.startswith("DELETE /v1/keys"):
            _restore_keys(engine, keys)
    assert failures == {}, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
    assert all(count > 0 for count in tried.values()), tried


def _fuzz(
    operation: Any, server_url: str, headers: dict[str, str], examples: int, valid: bool = True
) -> int:
    """Send up to ``examples`` generated requests, valid or invalid; return how many were sent."""
    sent = 0
    mode = GenerationMode.POSITIVE if valid else GenerationMode.NEGATIVE

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: Any) -> None:
        nonlocal sent
        _tame(case)
        checks = CHECKS if valid else [not_a_server_error]
        case.call_and_validate(base_url=server_url, headers=headers, checks=checks)
        sent += 1

    check()
    return sent


def _restore_keys(engine: Engine, keys: dict[str, str]) -> None:
    with db_session(engine) as db:
        hashes = {hash_key(plaintext) for plaintext in keys.values()}
        for row in db.exec(select(ApiKey).where(col(ApiKey.key_hash).in_(hashes))):
            row.revoked_at = None
            db.add(row)
        db.commit()
