"""The escalation policy file: defaults plus per-criterion overrides, validated on load."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from judgeloop.config import Settings, get_settings
from judgeloop.escalation.injection_patterns import BUILT_IN_INJECTION_PATTERNS
from judgeloop.rulefiles import (
    as_number,
    compile_pattern,
    describe_error,
    read_rule_file,
    rule_file_path,
)

# The parts of a session a text rule can look at.
Source = Literal["system", "user", "assistant", "tool", "tool_arguments", "metadata"]

# Where safety rules look by default: everything but the application's own system prompt.
TEXT_RULE_SOURCES: tuple[Source, ...] = ("user", "assistant", "tool", "tool_arguments")
# Where injections hide: text that outsiders (users, tools, callers' metadata) wrote.
INJECTION_SOURCES: tuple[Source, ...] = ("user", "tool", "metadata")

# Reason families (the part of a reason before the first colon) a daily budget may cap.
# Safety is never capped; an errored judgment has no label that could stand on its own.
CAPPABLE_REASONS = ("low_confidence", "uncalibrated", "drift", "audit")
NEVER_CAPPED = ("safety", "injection", "judge_error")

RuleName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+$", max_length=60)]


class TextRule(BaseModel):
    """A named regular expression (case-insensitive) searched in parts of a session."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: RuleName
    pattern: str = Field(min_length=1)
    sources: list[Source] = Field(
        default_factory=lambda: list(TEXT_RULE_SOURCES),
        min_length=1,
        description="Which parts of the session are searched.",
    )

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, pattern: str) -> str:
        compile_pattern(pattern)
        return pattern

    def search(self, text: str) -> bool:
        """Whether the pattern occurs in ``text``."""
        return compile_pattern(self.pattern).search(text) is not None


class InjectionRule(TextRule):
    """Text that tries to instruct the judge; by default searched where outsiders write."""

    sources: list[Source] = Field(
        default_factory=lambda: list(INJECTION_SOURCES),
        min_length=1,
        description="Which parts of the session are searched.",
    )


class ToolRule(BaseModel):
    """A risky tool call: tool name pattern, optionally narrowed by its arguments."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: RuleName
    tool: str = Field(min_length=1, description="Regex searched in the tool's name.")
    arguments: dict[str, str] = Field(
        default_factory=dict,
        description="Argument name -> regex its value (as text) must contain; all must match.",
    )
    above: dict[str, float] = Field(
        default_factory=dict,
        description="Argument name -> number its value must exceed; all must hold.",
    )

    @field_validator("tool")
    @classmethod
    def _tool_compiles(cls, pattern: str) -> str:
        compile_pattern(pattern)
        return pattern

    @field_validator("arguments")
    @classmethod
    def _argumentscompile_pattern(cls, patterns: dict[str, str]) -> dict[str, str]:
        for pattern in patterns.values():
            compile_pattern(pattern)
        return patterns

    def matches(self, tool_name: str, arguments: dict[str, Any]) -> bool:
        """Whether a call of ``tool_name`` with ``arguments`` is risky under this rule."""
        if compile_pattern(self.tool).search(tool_name) is None:
            return False
        for key, pattern in self.arguments.items():
            value = arguments.get(key)
            if value is None or compile_pattern(pattern).search(str(value)) is None:
                return False
        for key, limit in self.above.items():
            number = as_number(arguments.get(key))
            if number is None or number <= limit:
                return False
        return True


DEFAULT_RISKY_TOOLS: tuple[ToolRule, ...] = (
    ToolRule(name="payments", tool=r"refund|payment|payout|charge|transfer|wire"),
    ToolRule(name="deletions", tool=r"delete|remove|purge|erase|wipe|destroy|drop"),
    ToolRule(name="external_email", tool=r"send_?(e?mail|message)|email_send"),
)

DEFAULT_INJECTION_RULES: tuple[InjectionRule, ...] = tuple(
    InjectionRule(name=name, pattern=pattern) for name, pattern in BUILT_IN_INJECTION_PATTERNS
)


class CriterionPolicy(BaseModel):
    """How one criterion's decisions escalate: rates, budget, safety rules, novelty."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    audit_rate: float = Field(
        default=0.02, ge=0, le=1, description="Share of otherwise auto-decided sessions audited."
    )
    raised_audit_rate: float = Field(
        default=0.10,
        ge=0,
        le=1,
        description="Audit share while online agreement is below target or drift alarmed.",
    )
    daily_budget: int | None = Field(
        default=500,
        ge=0,
        description="Capped escalations per criterion per UTC day; null: unlimited.",
    )
    capped_reasons: list[str] = Field(
        default_factory=lambda: ["low_confidence", "audit"],
        description=f"Reason families the budget may cap; any of {', '.join(CAPPABLE_REASONS)}.",
    )
    unsafe_labels: list[str] = Field(
        default_factory=lambda: ["unsafe"],
        description="For safety criteria: verdicts that always go to a person.",
    )
    safety_rules: list[TextRule] = Field(default_factory=list)
    risky_tools: list[ToolRule] = Field(default_factory=lambda: list(DEFAULT_RISKY_TOOLS))
    injection_rules: list[InjectionRule] = Field(
        default_factory=lambda: list(DEFAULT_INJECTION_RULES)
    )
    novelty_quantile: float = Field(
        default=0.99,
        gt=0.5,
        le=1,
        description="Quantile of calibration novelty above which a session counts as novel.",
    )

    @field_validator("capped_reasons")
    @classmethod
    def _only_cappable(cls, reasons: list[str]) -> list[str]:
        for reason in reasons:
            if reason in NEVER_CAPPED:
                raise ValueError(f"{reason!r} escalations are never capped by the budget")
            if reason not in CAPPABLE_REASONS:
                raise ValueError(
                    f"unknown reason {reason!r}; the budget can cap {', '.join(CAPPABLE_REASONS)}"
                )
        return reasons

    @field_validator("safety_rules", "risky_tools", "injection_rules")
    @classmethod
    def _unique_names(cls, rules: list[Any]) -> list[Any]:
        names = [rule.name for rule in rules]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"rule names must be unique; repeated: {', '.join(duplicates)}")
        return rules

    @model_validator(mode="after")
    def _raised_not_below_normal(self) -> CriterionPolicy:
        if self.raised_audit_rate < self.audit_rate:
            raise ValueError(
                f"raised_audit_rate ({self.raised_audit_rate}) is below audit_rate "
                f"({self.audit_rate})"
            )
        return self


class EscalationPolicy(BaseModel):
    """Defaults for every criterion, and per-criterion overrides of any of their fields.

    An override replaces the default's value wholesale (a list is replaced, not extended).
    """

    model_config = ConfigDict(extra="forbid")

    defaults: CriterionPolicy = Field(default_factory=CriterionPolicy)
    criteria: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Criterion name -> fields that differ from defaults."
    )
    _resolved: dict[str, CriterionPolicy] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _overrides_are_valid(self) -> EscalationPolicy:
        problems = []
        for name, override in self.criteria.items():
            if not isinstance(override, dict):
                problems.append(f"criteria.{name}: expected a mapping of policy fields")
                continue
            merged = {**self.defaults.model_dump(), **override}
            try:
                self._resolved[name] = CriterionPolicy.model_validate(merged)
            except ValidationError as error:
                problems.append(describe_error(error, prefix=f"criteria.{name}"))
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def for_criterion(self, name: str) -> CriterionPolicy:
        """The policy of criterion ``name``: its overrides on top of the defaults."""
        return self._resolved.get(name, self.defaults)


class PolicyFileError(ValueError):
    """A policy file that cannot be read or is not a valid policy."""


def default_policy_path(settings: Settings | None = None) -> Path | None:
    """The configured policy file, else ``escalation.yaml`` in the judges folder if present."""
    settings = settings or get_settings()
    return rule_file_path(settings.policy_file, settings.judges_dir, "escalation.yaml")


def load_policy(path: Path | None = None) -> EscalationPolicy:
    """Read and validate a policy file; errors name the file and the field.

    Without ``path``: the configured policy file, else ``<judges_dir>/escalation.yaml`` when it
    exists, else the built-in defaults.
    """
    path = path if path is not None else default_policy_path()
    if path is None:
        return EscalationPolicy()
    data = read_rule_file(path, PolicyFileError, expected="'defaults' and 'criteria'")
    if data is None:
        return EscalationPolicy()
    # Top-level keys starting with "x-" hold YAML anchors shared by criteria; not policy fields.
    data = {key: value for key, value in data.items() if not str(key).startswith("x-")}
    try:
        return EscalationPolicy.model_validate(data)
    except ValidationError as error:
        raise PolicyFileError(f"{path}: {describe_error(error)}") from error
