"""The one-sentence verdict of a comparison needs both tests to agree before saying "differ"."""

from __future__ import annotations

from judgeloop.calibration.bootstrap import Interval, McNemarResult
from judgeloop.calibration.verdict import difference_verdict


def _mcnemar(p_value: float) -> McNemarResult:
    return McNemarResult(only_first_correct=30, only_second_correct=10, p_value=p_value)


def test_second_better() -> None:
    text = difference_verdict(
        "a", "b", Interval(estimate=0.05, low=0.02, high=0.08), _mcnemar(0.01)
    )
    assert text.startswith("verdict: they differ; b agrees with the humans more often than a")


def test_first_better() -> None:
    text = difference_verdict(
        "a", "b", Interval(estimate=-0.05, low=-0.08, high=-0.01), _mcnemar(0.001)
    )
    assert text.startswith("verdict: they differ; a agrees with the humans more often than b")


def test_interval_touching_zero_is_no_clear_difference() -> None:
    text = difference_verdict("a", "b", Interval(estimate=0.03, low=0.0, high=0.06), _mcnemar(0.01))
    assert text.startswith("verdict: no clear difference between a and b")


def test_large_p_value_is_no_clear_difference() -> None:
    text = difference_verdict("a", "b", Interval(estimate=0.05, low=0.01, high=0.08), _mcnemar(0.2))
    assert text.startswith("verdict: no clear difference")


def test_undefined_interval_is_no_clear_difference() -> None:
    text = difference_verdict("a", "b", Interval(estimate=None, low=None, high=None), _mcnemar(0.0))
    assert "no clear difference" in text
