"""PII redaction: each kind found, near-misses left alone, idempotent, configurable."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from judgeloop.config import Settings
from judgeloop.redaction import (
    NO_REDACTION,
    PII_KINDS,
    Redactor,
    iban_valid,
    luhn_valid,
    redactor_for,
)

REDACT = Redactor()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to jane.doe+shop@mail.example.com.", "write to [EMAIL]."),
        ("ops@northwind-outfitters.example", "[EMAIL]"),
        ("call +49 157 9870950 today", "call [PHONE] today"),
        ("+1 (415) 555-0123", "[PHONE]"),
        ("(415) 555-0123 or 415-555-0123 or 415.555.0123", "[PHONE] or [PHONE] or [PHONE]"),
        ("UK 020 7946 0958, Berlin 030 12345678", "UK [PHONE], Berlin [PHONE]"),
        ("card 4111 1111 1111 1111 exp 12/29", "card [CARD] exp 12/29"),
        ("4111-1111-1111-1111 / 5500000000000004", "[CARD] / [CARD]"),
        ("amex 3782 822463 10005", "amex [CARD]"),
        ("IBAN DE89 3704 0044 0532 0130 00 please", "IBAN [IBAN] please"),
        ("GB82WEST12345698765432 AND NOTHING ELSE", "[IBAN] AND NOTHING ELSE"),
        ("key sk-proj-4fT9xQ2mZr8Lp0Vb7NcW", "key [SECRET]"),
        ("sk-ant-api03-Zx81kQ9mP2vL7nR4tY6u", "[SECRET]"),
        ("sk_live_51HxZx81kQ9mP2vL7nR4tY", "[SECRET]"),
        ("AKIAIOSFODNN7EXAMPLE", "[SECRET]"),
        ("ghp_abcdefghijklmnopqrstuvwxyz0123456789", "[SECRET]"),
        ("xoxb-1234567890-abcdefghij", "[SECRET]"),
        (
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9",
            "[SECRET]",
        ),
        ("Authorization: Bearer abc123def456ghi789jkl", "Authorization: Bearer [SECRET]"),
        (
            "https://x.example/cb?token=Zx81kQ9mP2vL7nR4tY6u&id=3",
            "https://x.example/cb?token=[SECRET]&id=3",
        ),
        ('{"api_key": "Zx81kQ9mP2vL7nR4tY6u"}', '{"api_key": "[SECRET]"}'),
        ("my password: hunter22", "my password: [SECRET]"),
    ],
)
def test_each_kind_becomes_its_placeholder(text: str, expected: str) -> None:
    assert REDACT.text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "card 4111 1111 1111 1112 (fails Luhn)",
        "order 1234567890123456 shipped",  # 16 digits, not a valid card number
        "order ORD-2024-000123 on 2026-11-23 14:05:33",
        "ticket #48213, version 1.2.3, ip 192.168.1.10, 12 items",
        "tracking 1Z999AA10123456784 and unix time 1700000000123",
        "IBAN DE89 3704 0044 0532 0130 01 (fails mod-97)",
        "@support please help, user@localhost",
        "a token=expired and key=value and a monkey: banana",
        "the task-force of 3 agents, +1 item",
        "[EMAIL] [PHONE] [CARD] [IBAN] [SECRET]",
    ],
)
def test_near_misses_are_left_alone(text: str) -> None:
    assert REDACT.text(text) == text


def test_json_values_keys_and_numbers() -> None:
    value = {
        "customer": {"email": "ann@shop.example", "password": "hunter2", "age": 41},
        "card_number": 4111111111111111,
        "order_id": 1234567890123456,
        "notes": ["call +49 157 9870950", True, None],
        "api_key": "short-but-named",
    }
    assert REDACT.value(value) == {
        "customer": {"email": "[EMAIL]", "password": "[SECRET]", "age": 41},
        "card_number": "[CARD]",
        "order_id": 1234567890123456,
        "notes": ["call [PHONE]", True, None],
        "api_key": "[SECRET]",
    }


def test_messages_keep_their_structure() -> None:
    message = {
        "role": "assistant",
        "content": "Mailing ann@shop.example",
        "tool_calls": [
            {"id": "call_1", "name": "send_email", "arguments": {"to": "ann@shop.example"}}
        ],
    }
    assert REDACT.message(message) == {
        "role": "assistant",
        "content": "Mailing [EMAIL]",
        "tool_calls": [{"id": "call_1", "name": "send_email", "arguments": {"to": "[EMAIL]"}}],
    }
    bare = {"role": "assistant", "tool_calls": [{"id": "call_2", "name": "list_orders"}]}
    assert REDACT.message(bare) == bare


def test_kinds_are_configurable() -> None:
    text = "ann@shop.example, 4111 1111 1111 1111"
    assert redactor_for(True, ["card"]).text(text) == "ann@shop.example, [CARD]"
    assert redactor_for(False).text(text) == text
    assert NO_REDACTION.value({"a": text}) == {"a": text}
    defaults = Settings()
    assert defaults.redact_pii is True and tuple(defaults.redact_pii_kinds) == PII_KINDS


def test_checksums() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert iban_valid("DE89370400440532013000") and not iban_valid("DE89370400440532013001")


# ----------------------------------------------------------------- properties

_LOCAL = st.from_regex(r"[a-z][a-z0-9._+-]{0,15}[a-z0-9]", fullmatch=True)
_DOMAIN = st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9](\.[a-z]{2,6}){1,2}", fullmatch=True)
_EMAILS = st.builds(lambda local, domain: f"{local}@{domain}", _LOCAL, _DOMAIN)
_FILLER = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40
).map(lambda text: text.replace("@", " "))


@settings(max_examples=80, deadline=None)
@given(before=_FILLER, email=_EMAILS, after=_FILLER)
def test_no_planted_email_survives(before: str, email: str, after: str) -> None:
    redacted = REDACT.text(f"{before} {email} {after}")
    assert email not in redacted
    assert "[EMAIL]" in redacted


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.one_of(
            _FILLER,
            _EMAILS,
            st.sampled_from(
                [
                    "+49 157 9870950",
                    "4111 1111 1111 1111",
                    "DE89 3704 0044 0532 0130 00",
                    "sk-proj-4fT9xQ2mZr8Lp0Vb7NcW",
                    "password=hunter22",
                    "Bearer abc123def456ghi789jkl",
                ]
            ),
            st.from_regex(r"[0-9 -]{4,30}", fullmatch=True),
        ),
        max_size=8,
    ).map(" ".join)
)
def test_redaction_is_idempotent(text: str) -> None:
    once = REDACT.text(text)
    assert REDACT.text(once) == once
