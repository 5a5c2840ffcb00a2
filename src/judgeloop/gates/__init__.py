"""Approval gates: risk tiers for agents' proposed actions (pure; no database)."""

from judgeloop.gates.rules import (
    TIERS,
    UNMATCHED_RULE,
    Condition,
    GateEvaluation,
    GateRule,
    GateRules,
    GateRulesFileError,
    GateStatus,
    Tier,
    TierTimeout,
    evaluate,
    load_rules,
)

__all__ = [
    "TIERS",
    "UNMATCHED_RULE",
    "Condition",
    "GateEvaluation",
    "GateRule",
    "GateRules",
    "GateRulesFileError",
    "GateStatus",
    "Tier",
    "TierTimeout",
    "evaluate",
    "load_rules",
]
