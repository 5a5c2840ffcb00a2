"""Rendering sessions into judge prompts with Jinja2 (sandboxed: templates are user files).

The prompts fence each transcript between ``<session>`` and ``</session>`` and tell the judge
that what is inside is data, not instructions. A session cannot break out of the fence: fence
markers and chat-template tokens inside it are escaped, and every line a message continues on
is indented, so only the transcript's own ``[role]`` lines start at the margin.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template
from jinja2.sandbox import SandboxedEnvironment

from judgeloop.judges.outcome import ResolvedExample, SessionInput
from judgeloop.judges.spec import JudgeSpec

_environment = SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=False)

# "<session>", "</session>", "< / SESSION >" and chat-template tokens ("<|im_end|>"): text that
# could end the fence or start a new prompt turn once the transcript is in the prompt.
_FENCE_LOOKALIKE = re.compile(r"<(?=\s*/?\s*session\b|\|)", re.IGNORECASE)
# Every character a reader may take for a line break, not only "\n".
_LINE_BREAK = re.compile(r"\r\n|[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]")
_CONTINUATION = "\n  "


def neutralize(text: str) -> str:
    """``text`` made safe to fence: look-alike markers escaped, continuation lines indented."""
    return _LINE_BREAK.sub(_CONTINUATION, _FENCE_LOOKALIKE.sub("&lt;", text))


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
        lines.append(f"[metadata] {neutralize(_value_text(session.metadata))}")
    for message in session.messages:
        # The role and tool names come from the caller too: one line each, escaped.
        role = neutralize(" ".join(str(message.get("role", "?")).split()))
        content = neutralize(_value_text(message.get("content")))
        if role == "tool":
            name = neutralize(" ".join(str(message.get("name") or "").split()))
            lines.append(f"[tool result {name}] {content}".rstrip())
            continue
        if content:
            lines.append(f"[{role}] {content}")
        for call in message.get("tool_calls") or []:
            arguments = neutralize(_value_text(call.get("arguments", {})))
            name = neutralize(" ".join(str(call.get("name")).split()))
            lines.append(f"[{role} calls {name}] {arguments}")
    return "\n".join(lines)


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
    system = _template(spec.prompt.system).render(context)
    user = _template(spec.prompt.user).render(context)
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


@lru_cache(maxsize=256)
def _template(source: str) -> Template:
    """The compiled template of ``source``: compiling took a third of a judge call's CPU."""
    return _environment.from_string(source)
