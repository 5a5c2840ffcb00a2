"""Self-contained HTML reports with inline SVG plots (no scripts, no external assets)."""

from judgeloop.reports.html import render_page
from judgeloop.reports.svg import (
    confusion_matrix_svg,
    coverage_agreement_svg,
    reliability_diagram_svg,
)

__all__ = [
    "confusion_matrix_svg",
    "coverage_agreement_svg",
    "reliability_diagram_svg",
    "render_page",
]
