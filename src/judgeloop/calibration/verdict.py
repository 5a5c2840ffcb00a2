"""Saying in one sentence whether two judges differ in agreement with the humans."""

from __future__ import annotations

from judgeloop.calibration.bootstrap import Interval, McNemarResult


def difference_verdict(
    first: str, second: str, agreement_difference: Interval, mcnemar: McNemarResult
) -> str:
    """One sentence saying whether two judges differ in agreement with the humans.

    They differ when both tests say so: McNemar's exact p < 0.05 and the paired bootstrap
    interval of the agreement difference excluding zero; anything less is "no clear difference".
    """
    low, high = agreement_difference.low, agreement_difference.high
    excludes_zero = low is not None and high is not None and (low > 0 or high < 0)
    if mcnemar.p_value < 0.05 and excludes_zero:
        better, worse = (second, first) if (low or 0.0) > 0 else (first, second)
        return (
            f"verdict: they differ; {better} agrees with the humans more often than {worse} "
            f"(McNemar p = {mcnemar.p_value:.3g}, agreement interval excludes 0)"
        )
    return (
        f"verdict: no clear difference between {first} and {second} "
        f"(McNemar p = {mcnemar.p_value:.3g}; needs p < 0.05 and an interval excluding 0)"
    )
