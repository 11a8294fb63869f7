"""The dashboard's chart, drawn on the server as inline SVG: no JavaScript, no chart library, no CDN.

Colours come from classes the dashboard's stylesheet maps onto the admin's CSS variables, so the
chart follows the admin's light and dark themes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from redemptions.selectors import DayRedemptions

WIDTH, HEIGHT = 760, 270
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 14, 58
PLOT_WIDTH, PLOT_HEIGHT = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
BAR_SHARE = 0.7  # of each day's slot; the rest is the gap between bars
LABEL_EVERY = 5  # days between x-axis labels, counted back from the last day


def axis_top(highest: int) -> tuple[int, int]:
    """(top, step) of a y axis for counts up to `highest`: about four steps of 1, 2 or 5 x 10^n."""
    if highest <= 0:
        return 1, 1
    raw = highest / 4
    magnitude = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    return math.ceil(highest / step) * step, step


def _n(value: float) -> str:
    """A coordinate, never localised (SVG wants a dot)."""
    return f"{value:.1f}"


class _Scale:
    """Where a count and a day land on the plot."""

    def __init__(self, days: Sequence[DayRedemptions]):
        self.top, self.step = axis_top(max((day.redeemed + day.reversed for day in days), default=0))
        self.slot = PLOT_WIDTH / max(len(days), 1)
        self.width = self.slot * BAR_SHARE

    def y(self, value: float) -> float:
        return TOP + PLOT_HEIGHT - value / self.top * PLOT_HEIGHT

    def x(self, index: int) -> float:
        return LEFT + index * self.slot + self.slot * (1 - BAR_SHARE) / 2


def _grid(scale: _Scale) -> SafeString:
    """A gridline and a count label at each step of the y axis."""
    return format_html_join(
        "",
        '<line class="grid" x1="{}" x2="{}" y1="{}" y2="{}"/>'
        '<text class="tick" x="{}" y="{}" text-anchor="end" dominant-baseline="middle">{}</text>',
        (
            (LEFT, LEFT + PLOT_WIDTH, _n(scale.y(v)), _n(scale.y(v)), LEFT - 6, _n(scale.y(v)), f"{v:,}")
            for v in range(0, scale.top + 1, scale.step)
        ),
    )


def _bar(scale: _Scale, index: int, day: DayRedemptions) -> SafeString:
    """The day's stacked bar (unreversed, then reversed on top) with its tooltip."""
    x, y = scale.x(index), scale.y
    tooltip = f"{day.day:%a %d %b %Y}: {day.redeemed:,} redeemed, {day.reversed:,} reversed"
    return format_html(
        '<g class="bar"><title>{}</title>'
        '<rect class="redeemed" x="{}" y="{}" width="{}" height="{}"/>'
        '<rect class="reversed" x="{}" y="{}" width="{}" height="{}"/></g>',
        tooltip,
        _n(x),
        _n(y(day.redeemed)),
        _n(scale.width),
        _n(y(0) - y(day.redeemed)),
        _n(x),
        _n(y(day.redeemed + day.reversed)),
        _n(scale.width),
        _n(y(day.redeemed) - y(day.redeemed + day.reversed)),
    )


def _day_labels(scale: _Scale, days: Sequence[DayRedemptions]) -> SafeString:
    """A date under every few bars, counted back from the last day so it is always labelled."""
    return format_html_join(
        "",
        '<text class="tick" x="{}" y="{}" text-anchor="middle">{}</text>',
        (
            (_n(scale.x(index) + scale.width / 2), TOP + PLOT_HEIGHT + 18, f"{day.day:%d %b}")
            for index, day in enumerate(days)
            if (len(days) - 1 - index) % LABEL_EVERY == 0
        ),
    )


def redemptions_per_day_svg(days: Sequence[DayRedemptions], *, x_title: str) -> SafeString:
    """A stacked bar per day (unreversed, then reversed on top), a y axis with gridlines and count
    labels, day labels every few days (always the last day), both axis titles, and a tooltip
    (`<title>`) per bar with the day's numbers."""
    scale = _Scale(days)
    return format_html(
        '<svg class="chart" viewBox="0 0 {} {}" width="100%" role="img" aria-labelledby="chart-title" '
        'xmlns="http://www.w3.org/2000/svg"><title id="chart-title">Redemptions per day</title>'
        "{}"
        '<line class="axis" x1="{}" x2="{}" y1="{}" y2="{}"/>'
        '<line class="axis" x1="{}" x2="{}" y1="{}" y2="{}"/>'
        "{}{}"
        '<text class="axis-title" x="{}" y="{}" text-anchor="middle">{}</text>'
        '<text class="axis-title" transform="translate(14 {}) rotate(-90)" text-anchor="middle">'
        "Redemptions</text></svg>",
        WIDTH,
        HEIGHT,
        _grid(scale),
        LEFT,
        LEFT + PLOT_WIDTH,
        TOP + PLOT_HEIGHT,
        TOP + PLOT_HEIGHT,
        LEFT,
        LEFT,
        TOP,
        TOP + PLOT_HEIGHT,
        SafeString("".join(_bar(scale, index, day) for index, day in enumerate(days))),
        _day_labels(scale, days),
        LEFT + PLOT_WIDTH / 2,
        HEIGHT - 10,
        x_title,
        _n(TOP + PLOT_HEIGHT / 2),
    )
