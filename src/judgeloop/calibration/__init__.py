"""Calibration: agreement with humans, calibrated confidence and guaranteed thresholds.

Pure functions and estimators on arrays and label lists; nothing here touches the database.
scikit-learn is imported only when a calibrator or learned confidence is fitted.
"""

from judgeloop.calibration.bootstrap import (
    Interval,
    McNemarResult,
    bootstrap_interval,
    bootstrap_intervals,
    grouped_bootstrap_intervals,
    mcnemar_exact,
    paired_bootstrap_difference,
)
from judgeloop.calibration.calibrators import (
    CalibrationMetrics,
    Calibrator,
    ReliabilityBin,
    brier_score,
    calibration_metrics,
    disagreement_auroc,
    expected_calibration_error,
    reliability_bins,
)
from judgeloop.calibration.ceiling import AnnotatorAgreement, HumanCeiling, human_ceiling
from judgeloop.calibration.guarantee import (
    CascadeThresholds,
    Threshold,
    cascade_thresholds,
    fixed_sequence_threshold,
)
from judgeloop.calibration.learned import LearnedEscalation, StackedJudges
from judgeloop.calibration.metrics import (
    AgreementReport,
    LabelScores,
    agreement_report,
    agreement_statistic,
    confusion_matrix,
    krippendorff_alpha,
)

__all__ = [
    "AgreementReport",
    "AnnotatorAgreement",
    "CalibrationMetrics",
    "Calibrator",
    "CascadeThresholds",
    "HumanCeiling",
    "Interval",
    "LabelScores",
    "LearnedEscalation",
    "McNemarResult",
    "ReliabilityBin",
    "StackedJudges",
    "Threshold",
    "agreement_report",
    "agreement_statistic",
    "bootstrap_interval",
    "bootstrap_intervals",
    "grouped_bootstrap_intervals",
    "brier_score",
    "calibration_metrics",
    "cascade_thresholds",
    "confusion_matrix",
    "disagreement_auroc",
    "expected_calibration_error",
    "fixed_sequence_threshold",
    "human_ceiling",
    "krippendorff_alpha",
    "mcnemar_exact",
    "paired_bootstrap_difference",
    "reliability_bins",
]
