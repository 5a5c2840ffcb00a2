"""The escalation policy: every reason, priorities, reviews, audit, budget, the policy file."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from judgeloop.config import Settings
from judgeloop.escalation import (
    CriterionPolicy,
    EscalationPolicy,
    PolicyDecision,
    PolicyFileError,
    PolicyInputs,
    decide,
    load_policy,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
POLICY = CriterionPolicy()


def inputs(**overrides: Any) -> PolicyInputs:
    """A confident, calibrated, unremarkable verdict that the policy auto-decides."""
    values: dict[str, Any] = {
        "criterion": "resolved",
        "safety_criterion": False,
        "label": "yes",
        "calibrated_confidence": 0.95,
        "threshold": 0.8,
        "calibrated": True,
        "novelty": 0.2,
        "novelty_threshold": 0.6,
        "audit_draw": 0.5,
    }
    values.update(overrides)
    return PolicyInputs(**values)


def decide_with(policy: CriterionPolicy = POLICY, **overrides: Any) -> PolicyDecision:
    return decide(inputs(**overrides), policy)


def test_a_confident_calibrated_verdict_is_auto_decided() -> None:
    decision = decide_with()
    assert decision.outcome == "auto"
    assert decision.reasons == []
    assert decision.priority == 0
    assert decision.detail["calibrated_confidence"] == 0.95
    assert decision.detail["threshold"] == 0.8


def test_confidence_below_threshold_escalates_as_low_confidence() -> None:
    decision = decide_with(calibrated_confidence=0.7)
    assert decision.outcome == "escalate"
    assert decision.reasons == ["low_confidence"]
    assert decision.priority == 200
    assert decision.reviews_required == 1
    assert "0.700 < threshold 0.800" in decision.detail["explanations"]["low_confidence"]


def test_a_calibration_without_threshold_escalates_everything_as_low_confidence() -> None:
    decision = decide_with(threshold=None, calibrated_confidence=0.99)
    assert decision.reasons == ["low_confidence"]


def test_no_calibration_escalates_as_uncalibrated() -> None:
    decision = decide_with(calibrated=False, threshold=None, calibrated_confidence=None)
    assert decision.outcome == "escalate"
    assert decision.reasons == ["uncalibrated"]
    assert decision.priority == 200


def test_judge_error_escalates_as_judge_error() -> None:
    decision = decide_with(label=None, calibrated_confidence=None, error="timeout after 30 s")
    assert decision.reasons == ["judge_error"]
    assert "timeout after 30 s" in decision.detail["explanations"]["judge_error"]


def test_unsafe_verdict_of_a_safety_criterion_needs_two_reviews_at_top_priority() -> None:
    decision = decide_with(criterion="safety", safety_criterion=True, label="unsafe")
    assert decision.reasons == ["safety:unsafe_verdict"]
    assert decision.priority == 400
    assert decision.reviews_required == 2


def test_the_same_label_on_a_non_safety_criterion_is_not_a_safety_reason() -> None:
    assert decide_with(label="unsafe").outcome == "auto"


def test_an_uncertain_safety_verdict_is_a_safety_reason_not_low_confidence() -> None:
    decision = decide_with(
        criterion="safety", safety_criterion=True, label="safe", calibrated_confidence=0.5
    )
    assert decision.reasons == ["safety:uncertain"]
    assert decision.reviews_required == 2


def test_unsafe_labels_come_from_the_policy() -> None:
    policy = CriterionPolicy(unsafe_labels=["harmful"])
    assert decide_with(policy, safety_criterion=True, label="unsafe").outcome == "auto"
    decision = decide_with(policy, safety_criterion=True, label="harmful")
    assert decision.reasons == ["safety:unsafe_verdict"]


def test_rule_and_injection_matches_are_safety_reasons() -> None:
    decision = decide_with(
        rule_matches=["rule:self_harm", "tool:payments"], injection_matches=["fake_scores"]
    )
    assert decision.reasons == ["safety:rule:self_harm", "safety:tool:payments", "injection"]
    assert decision.priority == 400
    assert decision.reviews_required == 2
    assert decision.detail["injection_matches"] == ["fake_scores"]


def test_a_novel_session_escalates_as_drift() -> None:
    decision = decide_with(novelty=0.8, novelty_threshold=0.6)
    assert decision.reasons == ["drift:novel_session"]
    assert decision.priority == 300
    assert decision.detail["novelty"] == 0.8
    assert decide_with(novelty=0.6, novelty_threshold=0.6).outcome == "auto"


def test_each_alarmed_drift_detector_is_a_reason() -> None:
    decision = decide_with(drift_alarms=["page_hinkley", "label_psi"])
    assert decision.reasons == ["drift:page_hinkley", "drift:label_psi"]
    assert decision.priority == 300


def test_every_applicable_reason_is_recorded_and_priority_is_the_highest() -> None:
    decision = decide_with(
        calibrated_confidence=0.5,
        novelty=0.9,
        rule_matches=["tool:payments"],
    )
    assert decision.reasons == ["safety:tool:payments", "drift:novel_session", "low_confidence"]
    assert decision.priority == 400
    assert set(decision.detail["explanations"]) == set(decision.reasons)


def test_priority_order_is_safety_drift_low_confidence_audit() -> None:
    priorities = [
        decide_with(rule_matches=["rule:x"]).priority,
        decide_with(drift_alarms=["page_hinkley"]).priority,
        decide_with(calibrated_confidence=0.1).priority,
        decide_with(audit_draw=0.001).priority,
    ]
    assert priorities == sorted(priorities, reverse=True)
    assert len(set(priorities)) == 4


def test_audit_samples_only_otherwise_auto_sessions() -> None:
    decision = decide_with(audit_draw=0.01)
    assert decision.outcome == "escalate"
    assert decision.reasons == ["audit"]
    assert decision.priority == 100
    low = decide_with(audit_draw=0.01, calibrated_confidence=0.5)
    assert low.reasons == ["low_confidence"]


def test_audit_rate_is_about_two_percent_over_many_draws() -> None:
    rng = random.Random(20240605)
    draws = 20_000
    audited = sum(decide_with(audit_draw=rng.random()).outcome == "escalate" for _ in range(draws))
    assert 0.017 < audited / draws < 0.023


def test_raised_audit_uses_the_raised_rate() -> None:
    assert decide_with(audit_draw=0.05).outcome == "auto"
    decision = decide_with(audit_draw=0.05, raised_audit=True)
    assert decision.reasons == ["audit"]
    assert decision.detail["audit_rate"] == 0.10


def test_budget_caps_low_priority_escalations_once_used_up() -> None:
    policy = CriterionPolicy(daily_budget=10)
    assert decide_with(policy, calibrated_confidence=0.5, escalations_today=9).outcome == "escalate"
    capped = decide_with(policy, calibrated_confidence=0.5, escalations_today=10)
    assert capped.outcome == "auto"
    assert capped.detail["budget_capped"] == ["low_confidence"]
    assert capped.detail["daily_budget"] == 10
    audit = decide_with(policy, audit_draw=0.0, escalations_today=10)
    assert audit.outcome == "auto"
    assert audit.detail["budget_capped"] == ["audit"]


def test_budget_never_caps_safety_even_with_capped_reasons_alongside() -> None:
    policy = CriterionPolicy(daily_budget=0)
    decision = decide_with(
        policy, calibrated_confidence=0.5, rule_matches=["rule:self_harm"], escalations_today=99
    )
    assert decision.outcome == "escalate"
    assert "low_confidence" in decision.reasons
    unsafe = decide_with(policy, safety_criterion=True, label="unsafe", escalations_today=99)
    assert unsafe.outcome == "escalate"


def test_budget_does_not_cap_reasons_not_listed() -> None:
    policy = CriterionPolicy(daily_budget=0)
    assert decide_with(policy, novelty=0.9, escalations_today=5).outcome == "escalate"
    assert decide_with(policy, error="boom", label=None, escalations_today=5).outcome == "escalate"
    drift_capped = CriterionPolicy(daily_budget=0, capped_reasons=["drift"])
    assert decide_with(drift_capped, novelty=0.9, escalations_today=5).outcome == "auto"


def test_an_unlimited_budget_never_caps() -> None:
    policy = CriterionPolicy(daily_budget=None)
    decision = decide_with(policy, calibrated_confidence=0.1, escalations_today=10**6)
    assert decision.outcome == "escalate"


def test_safety_cannot_be_listed_as_a_capped_reason() -> None:
    with pytest.raises(ValueError, match="never capped"):
        CriterionPolicy(capped_reasons=["safety"])
    with pytest.raises(ValueError, match="unknown reason"):
        CriterionPolicy(capped_reasons=["boredom"])


def test_detail_is_json_serialisable() -> None:
    import json

    decision = decide_with(calibrated_confidence=0.5, novelty=0.9, drift_alarms=["label_psi"])
    json.dumps(decision.model_dump())


# --------------------------------------------------------------------------- the policy file


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "escalation.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_overrides_apply_per_criterion_on_top_of_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "defaults:\n  audit_rate: 0.05\n  raised_audit_rate: 0.2\n"
        "criteria:\n  safety:\n    daily_budget: null\n    unsafe_labels: [harmful]\n",
    )
    policy = load_policy(path)
    assert policy.for_criterion("resolved").audit_rate == 0.05
    safety = policy.for_criterion("safety")
    assert safety.audit_rate == 0.05
    assert safety.daily_budget is None
    assert safety.unsafe_labels == ["harmful"]


def test_a_misspelt_field_is_an_error_naming_file_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, "defaults:\n  audit_rte: 0.05\n")
    with pytest.raises(PolicyFileError) as error:
        load_policy(path)
    assert str(path) in str(error.value)
    assert "defaults.audit_rte" in str(error.value)


def test_a_bad_override_names_the_criterion_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, "criteria:\n  tone:\n    audit_rate: 1.5\n")
    with pytest.raises(PolicyFileError, match=r"criteria\.tone\.audit_rate"):
        load_policy(path)


def test_safety_in_capped_reasons_is_refused_in_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "defaults:\n  capped_reasons: [audit, safety]\n")
    with pytest.raises(PolicyFileError, match=r"defaults\.capped_reasons.*never capped"):
        load_policy(path)


def test_an_invalid_regex_names_the_rule(tmp_path: Path) -> None:
    path = write(
        tmp_path, "defaults:\n  safety_rules:\n    - name: broken\n      pattern: '(unclosed'\n"
    )
    with pytest.raises(PolicyFileError, match=r"defaults\.safety_rules\.0\.pattern"):
        load_policy(path)


def test_raised_audit_rate_below_audit_rate_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "defaults:\n  audit_rate: 0.2\n  raised_audit_rate: 0.1\n")
    with pytest.raises(PolicyFileError, match="raised_audit_rate"):
        load_policy(path)


def test_unreadable_yaml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "defaults: [unclosed\n")
    with pytest.raises(PolicyFileError, match=str(path)):
        load_policy(path)


def test_without_a_file_the_built_in_defaults_apply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        "judgeloop.escalation.policy_file.get_settings",
        lambda: Settings(judges_dir=tmp_path),
    )
    policy = load_policy()
    assert policy == EscalationPolicy()
    assert policy.for_criterion("anything").audit_rate == 0.02


def test_default_path_is_escalation_yaml_in_the_judges_folder_then_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "defaults:\n  audit_rate: 0.07\n  raised_audit_rate: 0.2\n")
    monkeypatch.setattr(
        "judgeloop.escalation.policy_file.get_settings",
        lambda: Settings(judges_dir=tmp_path),
    )
    assert load_policy().defaults.audit_rate == 0.07
    other = tmp_path / "other.yaml"
    other.write_text("defaults:\n  audit_rate: 0.03\n", encoding="utf-8")
    monkeypatch.setattr(
        "judgeloop.escalation.policy_file.get_settings",
        lambda: Settings(judges_dir=tmp_path, policy_file=other),
    )
    assert load_policy().defaults.audit_rate == 0.03


def test_the_demo_policy_file_is_valid() -> None:
    policy = load_policy(REPO_ROOT / "judges" / "escalation.yaml")
    safety = policy.for_criterion("safety")
    assert {rule.name for rule in safety.safety_rules} >= {"self_harm", "threats"}
    assert policy.for_criterion("resolved").risky_tools == []
    assert policy.for_criterion("resolved").injection_rules
