"""Rendering sessions into judge prompts with Jinja2 (sandboxed: templates are user files)."""

from __future__ import annotations

import json
from typing import Any

from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from judgeloop.judges.outcome import ResolvedExample, SessionInput
from judgeloop.judges.spec import JudgeSpec

_environment = SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=False)


def _value_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def render_transcript(session: SessionInput) -> str:
    """Every message, tool call, argument and result, plus the metadata, as plain text."""
    lines = []
    if session.metadata:
        lines.append(f"[metadata] {_value_text(session.metadata)}")
    for message in session.messages:
        role = message.get("role", "?")
        content = _value_text(message.get("content"))
        if role == "tool":
            lines.append(f"[tool result {message.get('name') or ''}] {content}".rstrip())
            continue
        if content:
            lines.append(f"[{role}] {content}")
        for call in message.get("tool_calls") or []:
            arguments = _value_text(call.get("arguments", {}))
            lines.append(f"[{role} calls {call.get('name')}] {arguments}")
    # The prompt fences the session between <session> markers; a session must not close the
    # fence itself and continue as if it were the prompt.
    return "\n".join(lines).replace("</session>", "<\\/session>")


def render_messages(
    spec: JudgeSpec, session: SessionInput, examples: list[ResolvedExample]
) -> list[dict[str, str]]:
    """The chat messages of a judge call: system and user prompts from the spec's templates."""
    context = {
        "criterion": spec.criterion.model_dump(),
        "rubric": spec.rubric,
        "session": {
            "messages": session.messages,
            "metadata": session.metadata,
            "source": session.source,
            "external_id": session.external_id,
        },
        "transcript": render_transcript(session),
        "examples": [
            {
                "label": resolved.example.label,
                "rationale": resolved.example.rationale,
                "transcript": render_transcript(resolved.session),
            }
            for resolved in examples
        ],
    }
    system = _environment.from_string(spec.prompt.system).render(context)
    user = _environment.from_string(spec.prompt.user).render(context)
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]
