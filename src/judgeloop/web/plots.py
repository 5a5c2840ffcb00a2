"""Inline SVG plots of the engineer pages: agreement over time, and bars of queue load."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 640
HEIGHT = 260
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 28, 48


@dataclass(frozen=True)
class SeriesPoint:
    """One period of a rate series: its label, the estimate and its interval, the count."""

    label: str
    estimate: float | None
    low: float | None
    high: float | None
    n: int


def _y(value: float) -> float:
    return TOP + (1 - value) * (HEIGHT - TOP - BOTTOM)


def agreement_series_svg(
    points: Sequence[SeriesPoint], *, target: float | None = None, title: str = ""
) -> str:
    """Agreement per period as dots with their interval as whiskers, and the target line."""
    plot_width = WIDTH - LEFT - RIGHT
    step = plot_width / max(len(points), 1)
    parts = [
        f'<line x1="{LEFT}" y1="{_y(0):.1f}" x2="{WIDTH - RIGHT}" y2="{_y(0):.1f}" stroke="#333"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{_y(0):.1f}" stroke="#333"/>',
        f'<text x="{WIDTH / 2:.0f}" y="16" font-size="12" font-weight="bold" '
        f'text-anchor="middle">{escape(title)}</text>',
    ]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(
            f'<text x="{LEFT - 6}" y="{_y(tick) + 3:.1f}" font-size="10" '
            f'text-anchor="end">{tick:g}</text>'
            f'<line x1="{LEFT}" y1="{_y(tick):.1f}" x2="{WIDTH - RIGHT}" y2="{_y(tick):.1f}" '
            'stroke="#e2e8f0"/>'
        )
    if target is not None:
        parts.append(
            f'<line x1="{LEFT}" y1="{_y(target):.1f}" x2="{WIDTH - RIGHT}" y2="{_y(target):.1f}" '
            f'stroke="#c53030" stroke-dasharray="5 3"><title>target {target:.3f}</title></line>'
        )
    label_every = max(1, len(points) // 10)
    for index, point in enumerate(points):
        x = LEFT + step * (index + 0.5)
        if index % label_every == 0:
            parts.append(
                f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" font-size="10" '
                f'text-anchor="middle">{escape(point.label)}</text>'
            )
        if point.estimate is None:
            continue
        tip = f"{point.label}: {point.estimate:.3f}"
        if point.low is not None and point.high is not None:
            tip += f" [{point.low:.3f}, {point.high:.3f}]"
            parts.append(
                f'<line x1="{x:.1f}" y1="{_y(point.low):.1f}" x2="{x:.1f}" '
                f'y2="{_y(point.high):.1f}" stroke="#2b6cb0" stroke-width="2"/>'
            )
        parts.append(
            f'<circle cx="{x:.1f}" cy="{_y(point.estimate):.1f}" r="4" fill="#2b6cb0">'
            f"<title>{escape(tip)} (n={point.n})</title></circle>"
        )
    parts.append(
        f'<text x="{WIDTH / 2:.0f}" y="{HEIGHT - 10}" font-size="11" text-anchor="middle">'
        "period (dots: agreement; whiskers: 95% interval; dashed: target)</text>"
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">'
        + "".join(parts)
        + "</svg>"
    )


def bars_svg(
    rows: Sequence[tuple[str, float]],
    *,
    title: str,
    unit: str = "",
    target: float | None = None,
) -> str:
    """Horizontal bars, one per (label, value), in the order given; ``target`` a dashed line.

    Bars past the target are drawn in the warning colour.
    """
    bar, gap, label_width = 20, 6, 200
    width = 640
    height = TOP + len(rows) * (bar + gap) + 12
    peak = max([value for _label, value in rows] + [target or 0]) or 1
    parts = [
        f'<text x="{width / 2:.0f}" y="16" font-size="12" font-weight="bold" '
        f'text-anchor="middle">{escape(title)}</text>'
    ]
    for index, (label, value) in enumerate(rows):
        y = TOP + index * (bar + gap)
        length = (width - label_width - 80) * value / peak
        fill = "#c53030" if target is not None and value > target else "#2b6cb0"
        parts.append(
            f'<text x="{label_width - 8}" y="{y + bar * 0.7:.1f}" font-size="11" '
            f'text-anchor="end">{escape(label)}</text>'
            f'<rect x="{label_width}" y="{y}" width="{max(length, 1):.1f}" height="{bar}" '
            f'fill="{fill}"><title>{escape(label)}: {value:g}{escape(unit)}</title></rect>'
            f'<text x="{label_width + length + 6:.1f}" y="{y + bar * 0.7:.1f}" '
            f'font-size="11">{value:g}{escape(unit)}</text>'
        )
    if target is not None:
        x = label_width + (width - label_width - 80) * target / peak
        parts.append(
            f'<line x1="{x:.1f}" y1="{TOP - 4}" x2="{x:.1f}" y2="{height - 8}" stroke="#c53030" '
            f'stroke-dasharray="5 3"><title>target {target:g}{escape(unit)}</title></line>'
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
        + "".join(parts)
        + "</svg>"
    )
