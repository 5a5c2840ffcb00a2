"""Small SVG plots written by hand: reliability diagram, confusion matrix, coverage curve."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH = 360
HEIGHT = 300
MARGIN = 48


def _scale(value: float, low: float, high: float, start: float, end: float) -> float:
    if high == low:
        return start
    return start + (value - low) / (high - low) * (end - start)


def _frame(title: str, x_label: str, y_label: str, body: list[str]) -> str:
    plot_bottom = HEIGHT - MARGIN
    axes = [
        f'<line x1="{MARGIN}" y1="{plot_bottom}" x2="{WIDTH - 12}" y2="{plot_bottom}" '
        'stroke="#333"/>',
        f'<line x1="{MARGIN}" y1="20" x2="{MARGIN}" y2="{plot_bottom}" stroke="#333"/>',
    ]
    ticks = []
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        x = _scale(tick, 0, 1, MARGIN, WIDTH - 12)
        y = _scale(tick, 0, 1, plot_bottom, 20)
        ticks.append(
            f'<text x="{x:.1f}" y="{plot_bottom + 14}" font-size="10" '
            f'text-anchor="middle">{tick:g}</text>'
        )
        ticks.append(
            f'<text x="{MARGIN - 6}" y="{y + 3:.1f}" font-size="10" '
            f'text-anchor="end">{tick:g}</text>'
        )
    labels = [
        f'<text x="{(MARGIN + WIDTH) / 2:.0f}" y="{HEIGHT - 10}" font-size="11" '
        f'text-anchor="middle">{escape(x_label)}</text>',
        f'<text x="12" y="{HEIGHT / 2:.0f}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 12 {HEIGHT / 2:.0f})">{escape(y_label)}</text>',
        f'<text x="{WIDTH / 2:.0f}" y="13" font-size="12" font-weight="bold" '
        f'text-anchor="middle">{escape(title)}</text>',
    ]
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">'
        + "".join(axes + ticks + labels + body)
        + "</svg>"
    )


def reliability_diagram_svg(
    bins: Sequence[tuple[float, float, int]], title: str = "Reliability diagram"
) -> str:
    """Bars of observed agreement per confidence bin (mean confidence, agreement, count)."""
    plot_bottom = HEIGHT - MARGIN
    body = [
        f'<line x1="{MARGIN}" y1="{plot_bottom}" x2="{WIDTH - 12}" y2="20" '
        'stroke="#999" stroke-dasharray="4 3"/>'
    ]
    for mean_confidence, agreement, count in bins:
        if count == 0:
            continue
        x = _scale(mean_confidence, 0, 1, MARGIN, WIDTH - 12)
        y = _scale(agreement, 0, 1, plot_bottom, 20)
        radius = 3 + min(count, 400) ** 0.5 / 2
        body.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius:.1f}" fill="#2b6cb0" '
            f'fill-opacity="0.7"><title>confidence {mean_confidence:.2f}: agreement '
            f"{agreement:.2f} (n={count})</title></circle>"
        )
    return _frame(title, "calibrated confidence", "agreement with humans", body)


def coverage_agreement_svg(
    points: Sequence[tuple[float, float]],
    target: float | None = None,
    chosen: tuple[float, float] | None = None,
    title: str = "Coverage against agreement",
) -> str:
    """The agreement among auto-decided items as coverage grows, the target, the chosen λ."""
    plot_bottom = HEIGHT - MARGIN
    ordered = sorted(points)
    path = " ".join(
        f"{'M' if i == 0 else 'L'}{_scale(c, 0, 1, MARGIN, WIDTH - 12):.1f},"
        f"{_scale(a, 0, 1, plot_bottom, 20):.1f}"
        for i, (c, a) in enumerate(ordered)
    )
    body = [f'<path d="{path}" fill="none" stroke="#2b6cb0" stroke-width="2"/>'] if path else []
    if target is not None:
        y = _scale(target, 0, 1, plot_bottom, 20)
        body.append(
            f'<line x1="{MARGIN}" y1="{y:.1f}" x2="{WIDTH - 12}" y2="{y:.1f}" stroke="#c53030" '
            f'stroke-dasharray="5 3"><title>target agreement {target:.2f}</title></line>'
        )
    if chosen is not None:
        x = _scale(chosen[0], 0, 1, MARGIN, WIDTH - 12)
        y = _scale(chosen[1], 0, 1, plot_bottom, 20)
        body.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="#c53030"><title>chosen threshold: '
            f"coverage {chosen[0]:.2f}, agreement {chosen[1]:.2f}</title></circle>"
        )
    return _frame(title, "coverage (share auto-decided)", "agreement with humans", body)


def confusion_matrix_svg(
    labels: Sequence[str], matrix: Sequence[Sequence[float]], title: str = "Confusion matrix"
) -> str:
    """A heat map: rows are the human majority, columns the judge."""
    size = len(labels)
    cell = max(24, min(60, 240 // max(size, 1)))
    left, top = 90, 50
    width = left + cell * size + 20
    height = top + cell * size + 40
    peak = max((value for row in matrix for value in row), default=0) or 1
    parts = [
        f'<text x="{width / 2:.0f}" y="14" font-size="12" font-weight="bold" '
        f'text-anchor="middle">{escape(title)}</text>',
        f'<text x="{left + cell * size / 2:.0f}" y="32" font-size="11" '
        'text-anchor="middle">judge</text>',
        f'<text x="12" y="{top + cell * size / 2:.0f}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 12 {top + cell * size / 2:.0f})">humans</text>',
    ]
    for j, label in enumerate(labels):
        parts.append(
            f'<text x="{left + cell * j + cell / 2:.0f}" y="{top - 4}" font-size="10" '
            f'text-anchor="middle">{escape(label)}</text>'
        )
    for i, row_label in enumerate(labels):
        parts.append(
            f'<text x="{left - 6}" y="{top + cell * i + cell / 2 + 3:.0f}" font-size="10" '
            f'text-anchor="end">{escape(row_label)}</text>'
        )
        for j in range(size):
            value = matrix[i][j]
            shade = 0.08 + 0.85 * value / peak
            x, y = left + cell * j, top + cell * i
            parts.append(
                f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" '
                f'fill="#2b6cb0" fill-opacity="{shade:.2f}" stroke="#fff"/>'
                f'<text x="{x + cell / 2:.0f}" y="{y + cell / 2 + 4:.0f}" '
                f'font-size="11" text-anchor="middle">{value:g}</text>'
            )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
        + "".join(parts)
        + "</svg>"
    )
