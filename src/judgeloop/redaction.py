"""PII redaction: emails, phone numbers, payment cards, IBANs and secrets become placeholders.

Pure functions over text and JSON values. A placeholder names what was there (``[EMAIL]``,
``[PHONE]``, ``[CARD]``, ``[IBAN]``, ``[SECRET]``), so a judge still sees that the agent read
out a card number, without the number. Cards must pass the Luhn check and IBANs the mod-97
check, so order ids and other long numbers stay. Redacting twice changes nothing.

Sessions are redacted once, on their way into storage (``store.sessions.add_sessions``); every
judge reads stored sessions, so no judge and no LLM sees what was redacted.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, get_args

PiiKind = Literal["email", "phone", "card", "iban", "secret"]
PII_KINDS: tuple[PiiKind, ...] = get_args(PiiKind)
PLACEHOLDERS: dict[PiiKind, str] = {
    "email": "[EMAIL]",
    "phone": "[PHONE]",
    "card": "[CARD]",
    "iban": "[IBAN]",
    "secret": "[SECRET]",
}

_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9._%+-]+@"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
    r"\.[A-Za-z]{2,24}\b"
)

# Known token formats: OpenAI/Anthropic (sk-, sk-proj-, sk-ant-), Stripe (sk_live_),
# AWS access key ids, GitHub tokens, Slack tokens, JWTs.
_SECRET_TOKEN = re.compile(
    r"\bsk-[A-Za-z0-9_-]{16,}"
    r"|\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,}"
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"
    r"|\bgh[pousr]_[A-Za-z0-9]{30,}"
    r"|\bgithub_pat_[A-Za-z0-9_]{30,}"
    r"|\bxox[abposr]-[A-Za-z0-9-]{10,}"
    r"|\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"
)
_BEARER = re.compile(r"\b(bearer\s+)([A-Za-z0-9._~+/-]{16,}=*)", re.I)
# key=…, token: "…", password=… (also as JSON "api_key": "…").
_ASSIGNED = re.compile(
    r"\b([\w-]*(?:key|token|secret|password|passwd|pwd)[\"']?\s*[:=]\s*[\"']?)"
    r"([^\s\"'&,;<>\[\]{}]+)",
    re.I,
)
_PASSWORD_NAME = re.compile(r"pass|pwd", re.I)
_SECRET_NAME = re.compile(
    r"^(?:.*[_-])?(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|"
    r"private[_-]?key|authorization|credentials?)$",
    re.I,
)

_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
# 13 to 19 digits, in groups of four (last group shorter) or Amex's 4-6-5, or unbroken.
_CARD = re.compile(
    r"(?<![\d+.-])(?:\d{4}([ -]?)\d{4}\1\d{4}\1\d{1,7}|\d{4}([ -]?)\d{6}\2\d{4,5})(?![\d-])"
)
# International (+CC …), North American ((415) 555-0123, 415-555-0123), and national
# numbers with a trunk 0 (030 1234567, 020 7946 0958), not when part of a longer run of digit
# groups (an IBAN that failed its check). Digit counts are checked after.
_PHONE = re.compile(
    r"(?<![\w+])\+\d[\d ()./-]{6,20}\d(?!\d)"
    r"|(?<![\w.])(?<!\d[ -])(?:\(\d{3}\) ?|\d{3}[-. ])\d{3}[-. ]\d{4}(?![\w-])(?! \d)"
    r"|(?<![\w.])(?<!\d[ -])0\d{1,4}[ /-]\d{3,8}(?:[ -]\d{2,5})?(?![\w-])(?! \d)"
)


def luhn_valid(digits: str) -> bool:
    """Whether a string of digits passes the Luhn check (as every payment card number does)."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def iban_valid(compact: str) -> bool:
    """Whether an IBAN without spaces passes the ISO 13616 mod-97 check."""
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def _looks_random(value: str) -> bool:
    # Long, varied and mixing character classes: an API key, not a word like "expired".
    classes = sum(
        bool(re.search(pattern, value)) for pattern in (r"[a-z]", r"[A-Z]", r"\d", r"[_\-+/=.]")
    )
    return len(value) >= 16 and classes >= 2 and _entropy(value) >= 3.0


def _assigned(match: re.Match[str]) -> str:
    name, value = match.group(1), match.group(2)
    if value.startswith("[") or value == PLACEHOLDERS["secret"]:
        return match.group(0)
    if (_PASSWORD_NAME.search(name) and len(value) >= 4) or _looks_random(value):
        return name + PLACEHOLDERS["secret"]
    return match.group(0)


def _valid_iban_length(candidate: str) -> int | None:
    # The pattern may run into the next word ("… 3000 AND") or the next IBAN: the longest
    # prefix that passes the check, ending at a group boundary, is the IBAN.
    positions = [i for i, char in enumerate(candidate) if char != " "]
    compact = "".join(candidate[i] for i in positions)
    for length in range(len(compact), 14, -1):
        end = positions[length - 1] + 1
        at_boundary = end == len(candidate) or candidate[end] == " "
        if at_boundary and iban_valid(compact[:length]):
            return end
    return None


def _redact_ibans(text: str) -> str:
    parts, position = [], 0
    while match := _IBAN.search(text, position):
        length = _valid_iban_length(match.group(0))
        if length is None:
            parts.append(text[position : match.start() + 1])
            position = match.start() + 1
            continue
        parts += [text[position : match.start()], PLACEHOLDERS["iban"]]
        position = match.start() + length
    parts.append(text[position:])
    return "".join(parts)


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return PLACEHOLDERS["card"] if luhn_valid(digits) else match.group(0)


def _phone(match: re.Match[str]) -> str:
    count = sum(char.isdigit() for char in match.group(0))
    return PLACEHOLDERS["phone"] if 9 <= count <= 15 else match.group(0)


_Step = Callable[[str], str]
_Hint = Callable[[str, str], bool]  # (text, lower-cased text) -> may this step find anything?
_TOKEN_PREFIXES = ("sk-", "sk_", "rk_", "AKIA", "ASIA", "gh", "xox", "eyJ")
_ASSIGNED_WORDS = ("key", "token", "secret", "pass", "pwd")
_DIGITS = re.compile(r"\d\d\d")
_IBAN_START = re.compile(r"[A-Z]{2}\d\d")

# Each step runs only when a cheap substring test says it might match: most text has no PII,
# and a plain `in` is far cheaper than a case-insensitive regex scan.
# Secrets first (a token may contain digits a phone pattern would take), cards before phones.
_STEPS: tuple[tuple[PiiKind, _Hint, _Step], ...] = (
    (
        "secret",
        lambda text, _lower: any(prefix in text for prefix in _TOKEN_PREFIXES),
        lambda text: _SECRET_TOKEN.sub(PLACEHOLDERS["secret"], text),
    ),
    (
        "secret",
        lambda _text, lower: "bearer" in lower,
        lambda text: _BEARER.sub(lambda m: m.group(1) + PLACEHOLDERS["secret"], text),
    ),
    (
        "secret",
        lambda text, lower: (
            ("=" in text or ":" in text) and any(word in lower for word in _ASSIGNED_WORDS)
        ),
        lambda text: _ASSIGNED.sub(_assigned, text),
    ),
    (
        "email",
        lambda text, _lower: "@" in text,
        lambda text: _EMAIL.sub(PLACEHOLDERS["email"], text),
    ),
    ("iban", lambda text, _lower: bool(_IBAN_START.search(text)), _redact_ibans),
    ("card", lambda text, _lower: bool(_DIGITS.search(text)), lambda text: _CARD.sub(_card, text)),
    (
        "phone",
        lambda text, _lower: bool(_DIGITS.search(text)),
        lambda text: _PHONE.sub(_phone, text),
    ),
)


@dataclass(frozen=True)
class Redactor:
    """Redacts the chosen kinds of PII; ``Redactor(kinds=())`` changes nothing."""

    kinds: frozenset[PiiKind] = frozenset(PII_KINDS)

    def text(self, text: str) -> str:
        """``text`` with every PII of the chosen kinds replaced by its placeholder."""
        if not self.kinds:
            return text
        lower = text.lower()
        for kind, may_match, step in _STEPS:
            if kind in self.kinds and may_match(text, lower):
                text = step(text)
                lower = text.lower()
        return text

    def value(self, value: Any, *, name: str | None = None) -> Any:
        """A JSON value with every string redacted; a new value, the input is not changed.

        ``name`` is the key the value sits under: the value of a key named like a secret
        (``password``, ``api_key``, ``authorization``, …) is replaced whole.
        """
        if isinstance(value, str):
            secret_named = name is not None and "secret" in self.kinds and _SECRET_NAME.match(name)
            if secret_named and len(value) >= 4 and not value.startswith("["):
                return PLACEHOLDERS["secret"]
            return self.text(value)
        if isinstance(value, dict):
            return {key: self.value(item, name=str(key)) for key, item in value.items()}
        if isinstance(value, list):
            return [self.value(item) for item in value]
        if isinstance(value, int) and not isinstance(value, bool) and "card" in self.kinds:
            digits = str(abs(value))
            if 13 <= len(digits) <= 19 and luhn_valid(digits):
                return PLACEHOLDERS["card"]
        return value

    def only(self, *kinds: PiiKind) -> Redactor:
        """This redactor narrowed to ``kinds`` (those of them it redacts at all)."""
        return Redactor(self.kinds & frozenset(kinds))

    def message(self, message: dict[str, Any]) -> dict[str, Any]:
        """A session message (as stored) with its content and tool-call arguments redacted.

        Roles, tool names and call ids are structure, not content, and stay as they are.
        """
        if not self.kinds:
            return message
        redacted = dict(message)
        if "content" in redacted:
            redacted["content"] = self.value(redacted["content"])
        if redacted.get("tool_calls"):
            redacted["tool_calls"] = [
                {**call, "arguments": self.value(call["arguments"])}
                if "arguments" in call
                else call
                for call in redacted["tool_calls"]
            ]
        return redacted


NO_REDACTION = Redactor(kinds=frozenset())


def redactor_for(enabled: bool, kinds: Iterable[PiiKind] = PII_KINDS) -> Redactor:
    """The Redactor for a configuration (``Settings.redact_pii``, ``Settings.redact_pii_kinds``)."""
    return Redactor(frozenset(kinds)) if enabled else NO_REDACTION


def configured_redactor() -> Redactor:
    """The Redactor the process's settings ask for (``JUDGELOOP_REDACT_PII``, on by default)."""
    from judgeloop.config import get_settings

    settings = get_settings()
    return redactor_for(settings.redact_pii, settings.redact_pii_kinds)
