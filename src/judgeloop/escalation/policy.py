"""The escalation policy: a pure function from what was measured to auto or escalate, and why."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from judgeloop.escalation.policy_file import CriterionPolicy

SAFETY_PRIORITY = 400
DRIFT_PRIORITY = 300
LOW_CONFIDENCE_PRIORITY = 200
AUDIT_PRIORITY = 100

# Priority by reason family (the part before the first colon).
REASON_PRIORITY: dict[str, int] = {
    "safety": SAFETY_PRIORITY,
    # A session that tries to steer its judge: the verdict cannot be trusted, whatever it says.
    "injection": SAFETY_PRIORITY,
    "drift": DRIFT_PRIORITY,
    "low_confidence": LOW_CONFIDENCE_PRIORITY,
    "uncalibrated": LOW_CONFIDENCE_PRIORITY,
    "judge_error": LOW_CONFIDENCE_PRIORITY,
    "audit": AUDIT_PRIORITY,
}


class PolicyInputs(BaseModel):
    """Everything the policy looks at for one (session, criterion)."""

    criterion: str
    safety_criterion: bool
    label: str | None
    calibrated_confidence: float | None
    threshold: float | None = Field(description="λ of the newest calibration; None: none passed.")
    calibrated: bool = Field(description="A calibration exists at all.")
    error: str | None = None
    rule_matches: list[str] = Field(default_factory=list)
    injection_matches: list[str] = Field(default_factory=list)
    novelty: float | None = None
    novelty_threshold: float | None = None
    drift_alarms: list[str] = Field(default_factory=list)
    audit_draw: float = Field(ge=0, lt=1, description="Uniform in [0, 1), drawn by the caller.")
    escalations_today: int = Field(default=0, ge=0)
    raised_audit: bool = False


class PolicyDecision(BaseModel):
    """Auto or escalate, with every reason that applied and what each measured."""

    outcome: Literal["auto", "escalate"]
    reasons: list[str]
    priority: int
    reviews_required: int
    detail: dict[str, Any]


def reason_family(reason: str) -> str:
    """``safety:rule:payments`` -> ``safety``."""
    return reason.split(":", 1)[0]


def reason_priority(reason: str) -> int:
    """The priority of one reason (0 for an unknown family)."""
    return REASON_PRIORITY.get(reason_family(reason), 0)


def _confidence_text(inputs: PolicyInputs) -> str:
    if inputs.calibrated_confidence is None:
        return "no calibrated confidence"
    if inputs.threshold is None:
        return (
            f"calibrated confidence {inputs.calibrated_confidence:.3f}; no threshold met the "
            "guarantee"
        )
    return (
        f"calibrated confidence {inputs.calibrated_confidence:.3f} < threshold "
        f"{inputs.threshold:.3f}"
    )


def _confidence_reasons(inputs: PolicyInputs, policy: CriterionPolicy) -> dict[str, str]:
    """Reasons from the verdict itself: error, calibration, confidence, an unsafe label."""
    reasons: dict[str, str] = {}
    if inputs.error is not None:
        reasons["judge_error"] = f"the judge failed: {inputs.error}"
    elif not inputs.calibrated:
        reasons["uncalibrated"] = "the judge version has no calibration yet"
    uncertain = (
        inputs.error is not None
        or not inputs.calibrated
        or inputs.threshold is None
        or inputs.calibrated_confidence is None
        or inputs.calibrated_confidence < inputs.threshold
    )
    if inputs.safety_criterion:
        if inputs.label is not None and inputs.label in policy.unsafe_labels:
            reasons["safety:unsafe_verdict"] = f"the judge's verdict is {inputs.label!r}"
        if uncertain:
            # On a safety criterion, a verdict the calibration cannot vouch for is a safety
            # matter: never capped, and reviewed twice.
            reasons["safety:uncertain"] = _confidence_text(inputs)
    elif uncertain and inputs.error is None and inputs.calibrated:
        reasons["low_confidence"] = _confidence_text(inputs)
    return reasons


def _context_reasons(inputs: PolicyInputs) -> dict[str, str]:
    """Reasons from the session and the stream: safety rules, injection, novelty, drift."""
    reasons: dict[str, str] = {}
    for match in inputs.rule_matches:
        reasons[f"safety:{match}"] = f"safety rule {match} matched"
    if inputs.injection_matches:
        reasons["injection"] = (
            "the session tries to instruct the judge (" + ", ".join(inputs.injection_matches) + ")"
        )
    if (
        inputs.novelty is not None
        and inputs.novelty_threshold is not None
        and inputs.novelty > inputs.novelty_threshold
    ):
        reasons["drift:novel_session"] = (
            f"novelty {inputs.novelty:.3f} > {inputs.novelty_threshold:.3f} "
            "(unlike the calibration sessions)"
        )
    for alarm in inputs.drift_alarms:
        reasons[f"drift:{alarm}"] = f"drift detector {alarm} has alarmed for {inputs.criterion}"
    return reasons


def decide(inputs: PolicyInputs, policy: CriterionPolicy) -> PolicyDecision:
    """Auto or escalate one (session, criterion), recording every reason that applies.

    Priority is the highest of the reasons' priorities (safety, injection 400 > drift 300 > low
    confidence, uncalibrated, judge error 200 > audit 100). Safety and injection escalations
    need two reviews. A session no other reason escalates is audited
    with probability ``audit_rate`` (``raised_audit_rate`` when ``raised_audit``). When every
    reason is one the budget may cap and today's budget is used up, the outcome is auto and
    ``detail["budget_capped"]`` lists what was not escalated.
    """
    audit_rate = policy.raised_audit_rate if inputs.raised_audit else policy.audit_rate
    detail: dict[str, Any] = {
        "label": inputs.label,
        "calibrated_confidence": inputs.calibrated_confidence,
        "threshold": inputs.threshold,
        "calibrated": inputs.calibrated,
        "error": inputs.error,
        "rule_matches": list(inputs.rule_matches),
        "injection_matches": list(inputs.injection_matches),
        "novelty": inputs.novelty,
        "novelty_threshold": inputs.novelty_threshold,
        "drift_alarms": list(inputs.drift_alarms),
        "audit_draw": inputs.audit_draw,
        "audit_rate": audit_rate,
    }
    explanations = {**_confidence_reasons(inputs, policy), **_context_reasons(inputs)}
    if not explanations and inputs.audit_draw < audit_rate:
        explanations["audit"] = (
            f"random audit: draw {inputs.audit_draw:.4f} < audit rate {audit_rate:.4f}"
        )
    # Highest priority first; ties keep the order in which they were found.
    reasons = sorted(explanations, key=reason_priority, reverse=True)
    if not reasons:
        return PolicyDecision(
            outcome="auto", reasons=[], priority=0, reviews_required=1, detail=detail
        )
    detail["explanations"] = explanations
    capped = set(policy.capped_reasons)
    if (
        policy.daily_budget is not None
        and all(reason_family(reason) in capped for reason in reasons)
        and inputs.escalations_today >= policy.daily_budget
    ):
        detail["budget_capped"] = reasons
        detail["escalations_today"] = inputs.escalations_today
        detail["daily_budget"] = policy.daily_budget
        return PolicyDecision(
            outcome="auto", reasons=[], priority=0, reviews_required=1, detail=detail
        )
    # An injection is reviewed like a safety case: someone tried to game the judge.
    safety = any(reason_family(reason) in ("safety", "injection") for reason in reasons)
    return PolicyDecision(
        outcome="escalate",
        reasons=reasons,
        priority=max(reason_priority(reason) for reason in reasons),
        reviews_required=2 if safety else 1,
        detail=detail,
    )
