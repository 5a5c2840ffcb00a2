"""The calibration report: a table for the terminal and a self-contained HTML page."""

from __future__ import annotations

from judgeloop.calibration.bootstrap import Interval
from judgeloop.calibration.calibrate import CalibrationResult
from judgeloop.reports import (
    confusion_matrix_svg,
    coverage_agreement_svg,
    reliability_diagram_svg,
    render_page,
)
from judgeloop.reports.html import table_html


def interval_text(interval: Interval | None, percent: bool = False) -> str:
    """``0.84 [0.78, 0.90]``, or ``-`` when undefined."""
    if interval is None or interval.estimate is None:
        return "-"
    fmt = "{:.1%}" if percent else "{:.3f}"
    if interval.low is None or interval.high is None:
        return fmt.format(interval.estimate)
    return (
        f"{fmt.format(interval.estimate)} [{fmt.format(interval.low)}, {fmt.format(interval.high)}]"
    )


def summary_rows(result: CalibrationResult) -> list[tuple[str, str]]:
    """The headline numbers, as (name, value) rows."""
    threshold = result.threshold
    rows = [
        ("judge", f"{result.judge} ({result.version})"),
        ("partitions", f"calibration {result.n_calibration}, test {result.n_test}"),
        (
            "target",
            f"agreement >= {1 - result.alpha:.0%} with probability >= {1 - result.delta:.0%}",
        ),
        (
            "threshold λ",
            "none: escalate everything"
            if threshold.lambda_ is None
            else f"{threshold.lambda_:.3f}",
        ),
        ("coverage (calibration)", f"{threshold.coverage_cal:.1%}"),
        ("coverage (test)", f"{result.test.coverage:.1%}"),
        (
            "agreement among auto-decided (test)",
            "-" if result.test.agreement_auto is None else f"{result.test.agreement_auto:.1%}",
        ),
        ("judge errors (test)", str(result.test.errors)),
    ]
    if result.agreement:
        report = result.agreement
        rows += [
            ("agreement (test, all)", interval_text(report.agreement, percent=True)),
            (f"Cohen's kappa ({report.kappa_weighting})", interval_text(report.cohen_kappa)),
            (
                f"Krippendorff's alpha ({report.alpha_level})",
                interval_text(report.krippendorff_alpha),
            ),
        ]
        if report.mcc:
            rows.append(("MCC", interval_text(report.mcc)))
        if report.spearman:
            rows.append(("Spearman", interval_text(report.spearman)))
    if result.ceiling:
        ceiling = result.ceiling
        rows += [
            ("SMEs' alpha (human ceiling)", interval_text(ceiling.krippendorff_alpha)),
            ("SMEs' mean pairwise kappa", interval_text(ceiling.mean_pairwise_kappa)),
            ("one SME vs the others' majority", interval_text(ceiling.leave_one_out_sme, True)),
            ("judge vs the same majorities", interval_text(ceiling.leave_one_out_judge, True)),
        ]
    if result.calibration_test:
        metrics = result.calibration_test
        auroc = "-" if metrics.auroc_disagreement is None else f"{metrics.auroc_disagreement:.3f}"
        rows += [
            ("ECE (test)", f"{metrics.ece:.3f}"),
            ("Brier (test)", f"{metrics.brier:.3f}"),
            ("AUROC of confidence for disagreement", auroc),
        ]
    rows.append(("cost per session", f"${result.cost_per_session_usd:.5f}"))
    return rows


def calibration_figures(result: CalibrationResult) -> list[str]:
    """The report's figures as inline SVG: reliability, confusion matrix, coverage curve."""
    figures = []
    if result.calibration_test:
        bins = [
            (b.mean_confidence or 0.0, b.agreement or 0.0, b.count)
            for b in result.calibration_test.bins
        ]
        figures.append(reliability_diagram_svg(bins))
    if result.agreement:
        figures.append(confusion_matrix_svg(result.agreement.labels, result.agreement.confusion))
    chosen = None
    if result.test.agreement_auto is not None:
        chosen = (result.test.coverage, result.test.agreement_auto)
    figures.append(
        coverage_agreement_svg(
            [(c, a) for _t, c, a in result.coverage_curve], target=1 - result.alpha, chosen=chosen
        )
    )
    return figures


def calibration_html(result: CalibrationResult) -> str:
    """The whole report as one HTML page with inline SVG figures."""
    figures = calibration_figures(result)
    sections = [
        ("Summary", table_html(("measure", "value"), summary_rows(result))),
        ("Figures", f"<div class='figures'>{''.join(figures)}</div>"),
    ]
    if result.agreement:
        per_label = [
            (
                label,
                f"{s.precision:.3f}" if s.precision is not None else "-",
                f"{s.recall:.3f}" if s.recall is not None else "-",
                s.support,
            )
            for label, s in result.agreement.per_label.items()
        ]
        sections.append(
            ("Per label (test)", table_html(("label", "precision", "recall", "support"), per_label))
        )
    note = (
        "Intervals are 95% percentile bootstrap intervals over sessions. The threshold comes "
        "from fixed-sequence testing with exact binomial bounds on the calibration partition; "
        "coverage and agreement are then measured on the untouched test partition."
    )
    return render_page(f"Calibration of {result.judge}", sections, note=note)
