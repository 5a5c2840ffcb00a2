"""Bad input on the live API: every refusal is a 4xx that names what is wrong, nothing 500s.

Also property tests for the session parser: arbitrary JSON lines either parse or give a
LineError naming the line and the field, never another exception.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func
from sqlmodel import select

from judgeloop.models import Session, SessionCreate
from judgeloop.sessions import ImportFailedError, import_sessions
from judgeloop.sessions.jsonl import LineError, ParsedLine, read_jsonl
from judgeloop.store import add_criteria, db_session
from tests.conftest import auth
from tests.factories import RESOLVED, TONE, label_payload, session_payload

# Only what the database stores differs between SQLite and PostgreSQL; the rest is checked
# before any handler runs, so one database is enough for it.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _stored_sessions(engine: Engine) -> int:
    with db_session(engine) as db:
        return int(db.exec(select(func.count()).select_from(Session)).one())


def _post_raw(api: httpx.Client, key: str, path: str, body: bytes) -> httpx.Response:
    return api.post(path, content=body, headers={**auth(key), "content-type": "application/json"})


def _messages(response: httpx.Response) -> str:
    """Every error message and location of a 4xx answer, as one string to search."""
    detail = response.json()["detail"]
    if isinstance(detail, str):
        return detail
    return " | ".join(f"{'.'.join(map(str, e.get('loc', [])))}: {e['msg']}" for e in detail)


# ----------------------------------------------------------------------------- size


@sqlite_only
def test_body_over_the_limit_is_413_with_and_without_content_length(
    api: httpx.Client, keys: dict[str, str], engine: Engine
) -> None:
    body = json.dumps({**session_payload(), "metadata": {"pad": "x" * 250_000}}).encode()
    declared = _post_raw(api, keys["pipeline"], "/v1/sessions", body)
    assert declared.status_code == 413
    assert "limit of 200000 bytes" in declared.json()["detail"]

    def chunked() -> Any:  # no Content-Length: the limit must count the bytes that arrive
        for start in range(0, len(body), 16_384):
            yield body[start : start + 16_384]

    streamed = api.post(
        "/v1/sessions",
        content=chunked(),
        headers={**auth(keys["pipeline"]), "content-type": "application/json"},
    )
    assert streamed.status_code == 413
    assert "limit of 200000 bytes" in streamed.json()["detail"]
    assert _stored_sessions(engine) == 0


# ----------------------------------------------------------------------------- nesting


@sqlite_only
@pytest.mark.parametrize("depth", [1_000, 10_000, 60_000])
def test_deeply_nested_json_is_refused_with_a_clear_4xx(
    api: httpx.Client, keys: dict[str, str], engine: Engine, depth: int
) -> None:
    payload = session_payload()
    nested = "[" * depth + "]" * depth
    text = json.dumps(payload).replace('"chat"', nested)
    response = _post_raw(api, keys["pipeline"], "/v1/sessions", text.encode())
    assert response.status_code == 422, response.text[:500]
    assert f"nests arrays and objects {depth + 2} deep" in _messages(response)
    assert _stored_sessions(engine) == 0


@sqlite_only
def test_moderate_nesting_in_metadata_is_stored(api: httpx.Client, keys: dict[str, str]) -> None:
    payload = session_payload()
    value: Any = "leaf"
    for _ in range(50):
        value = {"child": value}
    payload["metadata"] = {"tree": value}
    response = api.post("/v1/sessions", json=payload, headers=auth(keys["pipeline"]))
    assert response.status_code == 201, response.text


# ----------------------------------------------------------------------------- encoding


@sqlite_only
def test_invalid_utf8_is_a_422_naming_the_encoding(
    api: httpx.Client, keys: dict[str, str], engine: Engine
) -> None:
    body = json.dumps(session_payload()).encode().replace(b"Where is", b"Wh\xff\xfere is")
    response = _post_raw(api, keys["pipeline"], "/v1/sessions", body)
    assert response.status_code == 422, response.text
    assert "UTF-8" in _messages(response)
    assert _stored_sessions(engine) == 0


def test_lone_surrogate_escape_is_a_422(
    api: httpx.Client, keys: dict[str, str], engine: Engine
) -> None:
    body = json.dumps(session_payload()).replace("Where is", "Where \\ud800 is").encode()
    response = _post_raw(api, keys["pipeline"], "/v1/sessions", body)
    assert response.status_code == 422, response.text
    assert "surrogate" in _messages(response)
    assert _stored_sessions(engine) == 0


NUL_PLACES = [
    (lambda s: s["messages"][1].update(content="Where\u0000 is it?"), "messages.1.content"),
    (lambda s: s.update(external_id="s\u00001"), "external_id"),
    (lambda s: s["metadata"].update(note="a\u0000b"), "metadata.note"),
    (lambda s: s["metadata"].update({"k\u0000ey": "v"}), "metadata"),
    (
        lambda s: s["messages"][2]["tool_calls"][0]["arguments"].update(order_id="NW\u00001"),
        "messages.2.tool_calls.0.arguments.order_id",
    ),
    (lambda s: s["messages"][3].update(content={"status": ["ok\u0000"]}), "messages.3.content"),
]


def test_nul_bytes_are_a_422_naming_the_field_and_nothing_is_stored(
    api: httpx.Client, keys: dict[str, str], engine: Engine
) -> None:
    for place, field in NUL_PLACES:
        payload = session_payload()
        place(payload)
        batch = [session_payload("ok"), payload]
        response = api.post("/v1/sessions", json=batch, headers=auth(keys["pipeline"]))
        assert response.status_code == 422, response.text
        text = _messages(response)
        assert "NUL" in text and f"body.1.{field}" in text, text
    assert _stored_sessions(engine) == 0  # nor the valid sessions of those batches


def test_nul_bytes_in_query_path_and_web_forms_are_a_422(
    api: httpx.Client, keys: dict[str, str]
) -> None:
    query = api.get("/v1/queue", params={"criterion": "a\u0000b"}, headers=auth(keys["reviewer"]))
    assert query.status_code == 422 and "query.criterion: " in _messages(query), query.text
    path = api.get("/v1/judges/a%00b/versions/v/calibration", headers=auth(keys["engineer"]))
    assert path.status_code == 422 and "NUL" in _messages(path), path.text
    form = api.post("/ui/login", data={"key": "jl_\u0000", "next": ""})
    assert form.status_code == 422 and "key" in _messages(form), form.text


def test_numbers_beyond_the_id_range_are_a_422_not_a_database_error(
    api: httpx.Client, keys: dict[str, str]
) -> None:
    api_path = api.get("/v1/queue/3000000000", headers=auth(keys["reviewer"]))
    assert api_path.status_code == 422, api_path.text
    assert "path.item_id: Input should be less than or equal to 2147483647" in _messages(api_path)
    # Web pages declare no bound: the database refuses the number, and that is a 422 too
    # (PostgreSQL's INTEGER ends at 2**31 - 1, SQLite binds no more than 64 bits).
    signed_in = {"Cookie": f"judgeloop_key={keys['reviewer']}"}
    page = api.get(f"/ui/items/{'9' * 30}", headers=signed_in)
    assert page.status_code == 422, page.text
    assert "cannot be stored" in _messages(page), page.text
    assert api.get("/ui/items/3000000000", headers=signed_in).status_code in (404, 422)


# ----------------------------------------------------------------------------- vocabulary


@sqlite_only
def test_unknown_message_role_names_the_value_and_the_allowed_ones(
    api: httpx.Client, keys: dict[str, str]
) -> None:
    payload = session_payload()
    payload["messages"][1]["role"] = "robot"
    response = api.post("/v1/sessions", json=payload, headers=auth(keys["pipeline"]))
    assert response.status_code == 422
    text = _messages(response)
    assert "messages.1.role" in text and "robot" in text, text
    for role in ("system", "user", "assistant", "tool"):
        assert role in text, text


@sqlite_only
def test_unknown_criterion_names_the_value_and_the_allowed_ones(
    api: httpx.Client, keys: dict[str, str], engine: Engine
) -> None:
    with db_session(engine) as db:
        add_criteria(db, [RESOLVED, TONE], actor="test")
    api.post("/v1/sessions", json=session_payload(), headers=auth(keys["pipeline"]))
    response = api.post(
        "/v1/labels", json=label_payload(criterion="helpfulness"), headers=auth(keys["engineer"])
    )
    assert response.status_code == 422
    text = _messages(response)
    assert "criterion" in text and "helpfulness" in text and "resolved, tone" in text, text


@sqlite_only
def test_unknown_criterion_kind_lists_the_kinds(api: httpx.Client, keys: dict[str, str]) -> None:
    response = api.post(
        "/v1/criteria",
        json={"name": "x", "kind": "scale", "labels": ["a", "b"]},
        headers=auth(keys["engineer"]),
    )
    assert response.status_code == 422
    text = _messages(response)
    assert "kind" in text and "scale" in text and "ordinal" in text, text


@sqlite_only
@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        ("/v1/sessions", b"", "body"),
        ("/v1/sessions", b"null", "body"),
        ("/v1/sessions", b"42", "body"),
        ("/v1/sessions", b"[]", "empty batch"),
        ("/v1/sessions", b'{"source": 1e999999}', "source"),
        ("/v1/sessions", b'{"source": NaN}', "JSON"),
        ("/v1/labels", b"[[[]]]", "body.0"),
        ("/v1/queue/1/reviews", b'{"label": {"a": 1}}', "label"),
        ("/v1/gates", b'{"action": {"name": "x", "arguments": []}}', "action.arguments"),
        ("/v1/keys", b'{"name": "k", "role": "root"}', "root"),
    ],
)
def test_malformed_bodies_get_a_4xx_naming_the_problem(
    api: httpx.Client, keys: dict[str, str], path: str, body: bytes, expected: str
) -> None:
    response = _post_raw(api, keys["admin"], path, body)
    assert 400 <= response.status_code < 500, response.text
    assert expected in _messages(response), _messages(response)


def test_an_imported_file_with_nul_or_nan_names_line_and_field_and_stores_nothing(
    engine: Engine, tmp_path: Path
) -> None:
    good = session_payload("good")
    nul = session_payload("nul")
    nul["messages"][1]["content"] = "Where\u0000 is it?"
    path = tmp_path / "sessions.jsonl"
    lines = [json.dumps(good), json.dumps(nul), json.dumps(good).replace('"chat"', "NaN")]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ImportFailedError) as failed:
        import_sessions(engine, path, actor="test")
    reasons = [str(error) for error in failed.value.errors]
    assert reasons == [
        f"{path}:2: messages.1.content: contains a NUL character (\\u0000), which cannot be "
        "stored: 'Where\\x00 is it?'",
        f"{path}:3: metadata.channel: nan is not a JSON number",
    ]
    assert _stored_sessions(engine) == 0


# ----------------------------------------------------------------------------- parser


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
_session_like = st.fixed_dictionaries(
    {},
    optional={
        "source": _json_values | st.text(min_size=1, max_size=8),
        "external_id": _json_values | st.text(min_size=1, max_size=8),
        "messages": st.lists(
            st.fixed_dictionaries(
                {"role": st.sampled_from(["system", "user", "assistant", "tool", "robot"])},
                optional={
                    "content": _json_values,
                    "tool_calls": _json_values,
                    "tool_call_id": _json_values,
                    "name": _json_values,
                },
            ),
            max_size=4,
        ),
        "metadata": _json_values,
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(_json_values | _session_like, min_size=1, max_size=5))
def test_parser_accepts_or_names_line_and_field(tmp_path_factory: Any, lines: list[Any]) -> None:
    path: Path = tmp_path_factory.mktemp("jsonl") / "sessions.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    outcomes = list(read_jsonl(path, SessionCreate))
    assert len(outcomes) == len(lines)
    for number, (line, outcome) in enumerate(zip(lines, outcomes, strict=True), start=1):
        assert outcome.line == number
        if isinstance(outcome, LineError):
            assert str(outcome).startswith(f"{path}:{number}: ")
            if isinstance(line, dict):
                # Each problem is "field.path: why"; a problem of the whole object says (line).
                for problem in outcome.reason.split("; "):
                    location, _, why = problem.partition(": ")
                    assert location and why, outcome.reason
        else:
            assert isinstance(outcome, ParsedLine) and isinstance(line, dict)


@settings(max_examples=60, deadline=None)
@given(raw=st.binary(max_size=200))
def test_parser_survives_arbitrary_bytes(tmp_path_factory: Any, raw: bytes) -> None:
    path: Path = tmp_path_factory.mktemp("jsonl") / "bytes.jsonl"
    path.write_bytes(raw)
    for outcome in read_jsonl(path, SessionCreate):
        assert isinstance(outcome, LineError | ParsedLine)
        if isinstance(outcome, LineError):
            assert outcome.line >= 1 and outcome.reason
