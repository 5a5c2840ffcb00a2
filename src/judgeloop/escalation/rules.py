"""Safety rules and prompt-injection patterns matched against a session's text and tool calls."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from judgeloop.escalation.obfuscation import text_readings
from judgeloop.escalation.policy_file import CriterionPolicy, Source, TextRule
from judgeloop.judges.outcome import SessionInput


def _text_leaves(value: Any) -> Iterator[str]:
    """Every string and number inside a JSON value, so nested tool results are searched too."""
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, int | float):
        yield str(value)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _text_leaves(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _text_leaves(item)


_ROLE_SOURCES: dict[str, Source] = {
    "system": "system",
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
}


def session_parts(session: SessionInput) -> Iterator[tuple[Source, str]]:
    """The session's text, each piece tagged with the part it comes from."""
    for text in _text_leaves(session.metadata):
        yield "metadata", text
    for message in session.messages:
        source = _ROLE_SOURCES.get(str(message.get("role", "")))
        if source is not None:
            for text in _text_leaves(message.get("content")):
                yield source, text
        for call in message.get("tool_calls") or []:
            for text in _text_leaves(call.get("arguments")):
                yield "tool_arguments", text


def tool_calls(session: SessionInput) -> Iterator[tuple[str, dict[str, Any]]]:
    """(tool name, arguments) of every tool call in the session."""
    for message in session.messages:
        for call in message.get("tool_calls") or []:
            arguments = call.get("arguments")
            yield str(call.get("name") or ""), arguments if isinstance(arguments, dict) else {}


def _matching_rules(
    session: SessionInput, rules: Sequence[TextRule], *, undisguise: bool = False
) -> list[str]:
    parts = list(session_parts(session))
    if undisguise:
        parts = [(source, reading) for source, text in parts for reading in text_readings(text)]
    matched = []
    for rule in rules:
        sources = set(rule.sources)
        if any(source in sources and rule.search(text) for source, text in parts):
            matched.append(rule.name)
    return matched


def match_safety_rules(session: SessionInput, policy: CriterionPolicy) -> list[str]:
    """Names of the safety rules (``rule:<name>``) and risky tools (``tool:<name>``) matched."""
    matched = [f"rule:{name}" for name in _matching_rules(session, policy.safety_rules)]
    calls = list(tool_calls(session))
    for rule in policy.risky_tools:
        if any(rule.matches(name, arguments) for name, arguments in calls):
            matched.append(f"tool:{rule.name}")
    return matched


def detect_injection(session: SessionInput, policy: CriterionPolicy) -> list[str]:
    """Names of the injection patterns found: text in the session that tries to steer the judge.

    Each text is searched as written and with disguises undone (spaced-out letters, full-width
    and zero-width characters, base64), since the judge reads through them.
    """
    return _matching_rules(session, policy.injection_rules, undisguise=True)
