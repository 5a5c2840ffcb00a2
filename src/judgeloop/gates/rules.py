"""The gates rules file: ordered rules that put an agent's proposed action in a risk tier.

The first rule whose action pattern and ``when`` conditions match decides the tier. A green
action is approved at once; a yellow one is approved unless one of its ``require_human_if``
conditions holds; a red one always waits for a person. An action that no rule matches is red:
gates fail closed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from judgeloop.config import Settings, get_settings
from judgeloop.rulefiles import (
    as_number,
    compile_pattern,
    describe_error,
    read_rule_file,
    rule_file_path,
)

Tier = Literal["green", "yellow", "red"]
GateStatus = Literal["approved", "pending", "rejected", "modified", "expired"]
TIERS: tuple[Tier, ...] = ("green", "yellow", "red")
UNMATCHED_RULE = "unmatched"

RuleName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+$", max_length=60)]

# `amount > 100`, `len(records) >= 50`, `recipient.domain ~ example\.com$`, `mode == bulk`.
_CONDITION = re.compile(
    r"^\s*(?:len\(\s*(?P<len_path>[A-Za-z_][\w.]*)\s*\)|(?P<path>[A-Za-z_][\w.]*))"
    r"\s*(?P<op>>=|<=|==|!=|>|<|~)\s*(?P<value>.+?)\s*$"
)


class Condition(BaseModel):
    """One parsed condition on the action's arguments."""

    model_config = ConfigDict(frozen=True)

    text: str
    path: tuple[str, ...]
    length: bool
    op: str
    value: str

    @classmethod
    def parse(cls, text: str) -> Condition:
        """Parse ``amount > 100``-style text; ValueError says what is wrong."""
        match = _CONDITION.match(text)
        if match is None:
            raise ValueError(
                f"cannot read condition {text!r}; expected e.g. 'amount > 100', "
                "'len(records) > 50' or 'to ~ @example\\.com$'"
            )
        path = match["len_path"] or match["path"]
        value = match["value"].strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        op = match["op"]
        if op == "~":
            compile_pattern(value)
        elif op in (">", ">=", "<", "<=") and as_number(value) is None:
            raise ValueError(f"condition {text!r}: {op} needs a number, got {value!r}")
        if match["len_path"] and as_number(value) is None:
            raise ValueError(f"condition {text!r}: len(...) compares with a number")
        return cls(
            text=text,
            path=tuple(path.split(".")),
            length=bool(match["len_path"]),
            op=op,
            value=value,
        )

    def holds(self, arguments: dict[str, Any]) -> bool | None:
        """Whether the condition holds; None when the argument is missing or not comparable."""
        found, subject = _lookup(arguments, self.path)
        if not found:
            return None
        if self.length:
            if not isinstance(subject, list | dict | str):
                return None
            subject = len(subject)
        if self.op == "~":
            text = subject if isinstance(subject, str) else yaml.safe_dump(subject).strip()
            return compile_pattern(self.value).search(text) is not None
        number, limit = as_number(subject), as_number(self.value)
        if number is not None and limit is not None:
            return _compare(number, self.op, limit)
        if self.op in ("==", "!="):
            return (str(subject) == self.value) == (self.op == "==")
        return None


def _compare(number: float, op: str, limit: float) -> bool:
    return {
        ">": number > limit,
        ">=": number >= limit,
        "<": number < limit,
        "<=": number <= limit,
        "==": number == limit,
        "!=": number != limit,
    }[op]


def _lookup(arguments: dict[str, Any], path: tuple[str, ...]) -> tuple[bool, Any]:
    value: Any = arguments
    for part in path:
        if not isinstance(value, dict) or part not in value:
            return False, None
        value = value[part]
    return True, value


class GateRule(BaseModel):
    """Actions whose name matches ``action`` (and whose arguments meet ``when``) get ``tier``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: RuleName
    action: str = Field(min_length=1, description="Regex searched in the action's name.")
    tier: Tier
    when: list[str] = Field(
        default_factory=list, description="Conditions that must all hold for the rule to match."
    )
    require_human_if: list[str] = Field(
        default_factory=list,
        description="Yellow only: any condition holding (or unreadable) sends it to a person.",
    )

    @field_validator("action")
    @classmethod
    def _action_compiles(cls, pattern: str) -> str:
        compile_pattern(pattern)
        return pattern

    @field_validator("when", "require_human_if")
    @classmethod
    def _conditions_parse(cls, conditions: list[str]) -> list[str]:
        for text in conditions:
            Condition.parse(text)
        return conditions

    def matches(self, action: str, arguments: dict[str, Any]) -> bool:
        """Whether this rule applies to ``action`` called with ``arguments``."""
        if compile_pattern(self.action).search(action) is None:
            return False
        return all(Condition.parse(text).holds(arguments) is True for text in self.when)


class TierTimeout(BaseModel):
    """What happens to a pending gate of one tier that nobody decides in time."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hard_timeout_hours: float | None = Field(
        default=None, gt=0, description="Null: the gate_hard_timeout_hours setting (4 h)."
    )
    on_expiry: Literal["reject", "approve"] = Field(
        default="reject", description="Fail closed by default: an expired action is rejected."
    )


class GateRules(BaseModel):
    """The whole rules file."""

    model_config = ConfigDict(extra="forbid")

    rules: list[GateRule] = Field(default_factory=list)
    timeouts: dict[Tier, TierTimeout] = Field(default_factory=dict)

    @field_validator("rules")
    @classmethod
    def _unique_names(cls, rules: list[GateRule]) -> list[GateRule]:
        names = [rule.name for rule in rules]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"rule names must be unique; repeated: {', '.join(duplicates)}")
        for rule in rules:
            if rule.require_human_if and rule.tier != "yellow":
                raise ValueError(
                    f"rule {rule.name!r}: require_human_if only applies to yellow rules"
                )
        return rules

    def timeout_for(self, tier: Tier) -> TierTimeout:
        """The timeout behaviour of ``tier`` (reject after the default time when unset)."""
        return self.timeouts.get(tier, TierTimeout())


class GateEvaluation(BaseModel):
    """The rules' verdict on one proposed action."""

    tier: Tier
    status: Literal["approved", "pending"]
    rule: str = Field(description=f"The rule that matched, or {UNMATCHED_RULE!r}.")
    explanation: str
    hard_timeout_hours: float | None = None
    on_expiry: Literal["reject", "approve"] = "reject"


def evaluate(action: str, arguments: dict[str, Any], rules: GateRules) -> GateEvaluation:
    """Put ``action`` in its tier by the first matching rule; unmatched actions are red."""
    for rule in rules.rules:
        if not rule.matches(action, arguments):
            continue
        timeout = rules.timeout_for(rule.tier)
        common = {"tier": rule.tier, "rule": rule.name, **timeout.model_dump()}
        if rule.tier == "green":
            return GateEvaluation(
                status="approved", explanation=f"green: rule {rule.name}", **common
            )
        if rule.tier == "red":
            return GateEvaluation(
                status="pending", explanation=f"red: rule {rule.name} needs a person", **common
            )
        over = []
        for text in rule.require_human_if:
            holds = Condition.parse(text).holds(arguments)
            if holds is None:
                over.append(f"{text} (argument missing or not comparable)")
            elif holds:
                over.append(text)
        if over:
            return GateEvaluation(
                status="pending",
                explanation=f"yellow: rule {rule.name}: {'; '.join(over)}",
                **common,
            )
        return GateEvaluation(
            status="approved",
            explanation=f"yellow: rule {rule.name}: within limits",
            **common,
        )
    timeout = rules.timeout_for("red")
    return GateEvaluation(
        tier="red",
        status="pending",
        rule=UNMATCHED_RULE,
        explanation="red: no rule matches this action (fail closed)",
        **timeout.model_dump(),
    )


class GateRulesFileError(ValueError):
    """A gates rules file that cannot be read or is not valid."""


def default_rules_path(settings: Settings | None = None) -> Path | None:
    """The configured rules file, else ``gates.yaml`` in the judges folder if present."""
    settings = settings or get_settings()
    return rule_file_path(settings.gates_file, settings.judges_dir, "gates.yaml")


def load_rules(path: Path | None = None) -> GateRules:
    """Read and validate a rules file; errors name the file and the field.

    Without ``path``: the configured ``gates_file``, else ``<judges_dir>/gates.yaml`` when it
    exists, else no rules at all (every action red).
    """
    path = path if path is not None else default_rules_path()
    if path is None:
        return GateRules()
    data = read_rule_file(path, GateRulesFileError, expected="'rules' and 'timeouts'")
    if data is None:
        return GateRules()
    try:
        return GateRules.model_validate(data)
    except ValidationError as error:
        raise GateRulesFileError(f"{path}: {describe_error(error)}") from error
