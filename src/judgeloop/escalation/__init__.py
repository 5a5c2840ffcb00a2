"""Escalation: the policy (a pure function), its file, safety rules, novelty and drift detectors.

Nothing here touches the database; ``judgeloop.store.drift`` persists the detectors' state.
"""

from judgeloop.escalation.drift import AgreementWindow, LabelPSI, PageHinkley
from judgeloop.escalation.novelty import NoveltyModel
from judgeloop.escalation.policy import (
    REASON_PRIORITY,
    PolicyDecision,
    PolicyInputs,
    decide,
    reason_family,
    reason_priority,
)
from judgeloop.escalation.policy_file import (
    CriterionPolicy,
    EscalationPolicy,
    InjectionRule,
    PolicyFileError,
    TextRule,
    ToolRule,
    load_policy,
)
from judgeloop.escalation.rules import detect_injection, match_safety_rules

__all__ = [
    "REASON_PRIORITY",
    "AgreementWindow",
    "CriterionPolicy",
    "EscalationPolicy",
    "InjectionRule",
    "LabelPSI",
    "NoveltyModel",
    "PageHinkley",
    "PolicyDecision",
    "PolicyFileError",
    "PolicyInputs",
    "TextRule",
    "ToolRule",
    "decide",
    "detect_injection",
    "load_policy",
    "match_safety_rules",
    "reason_family",
    "reason_priority",
]
