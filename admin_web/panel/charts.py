"""Bar charts drawn on the server as SVG (no script, no CDN): the template draws the
rectangles this module lays out."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable

WIDTH = 600
HEIGHT = 160
LABEL_SPACE = 18  # under the bars, for the day labels


@dataclasses.dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: int
    title: str  # the tooltip: label and value in words


@dataclasses.dataclass(frozen=True, slots=True)
class Chart:
    bars: list[Bar]
    width: int
    height: int
    peak: int
    baseline: float
    empty: bool


def last_days(today: dt.date, days: int) -> list[str]:
    """The ``days`` ISO dates ending with ``today``."""
    return [(today - dt.timedelta(days=n)).isoformat() for n in range(days - 1, -1, -1)]


def bar_chart(
    days: list[str], values: Iterable[tuple[str, int]], *, title: str = "{day}: {value}"
) -> Chart:
    """One bar per day (missing days are zero), scaled to the tallest."""
    by_day = dict(values)
    series = [(day, int(by_day.get(day, 0))) for day in days]
    peak = max((v for _, v in series), default=0)
    plot = HEIGHT - LABEL_SPACE
    slot = WIDTH / max(len(series), 1)
    bars = []
    for i, (day, value) in enumerate(series):
        h = 0.0 if peak == 0 else max(1.0, plot * value / peak) if value else 0.0
        bars.append(
            Bar(
                x=round(i * slot + slot * 0.15, 1),
                y=round(plot - h, 1),
                width=round(slot * 0.7, 1),
                height=round(h, 1),
                label=day[8:10] + "/" + day[5:7],
                value=value,
                title=title.format(day=day, value=value),
            )
        )
    return Chart(bars, WIDTH, HEIGHT, peak, plot, peak == 0)
