"""Reading the history back: any window's counts, spreads and chart, from whole buckets."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Max, Min, Q, Sum

from ..conf import app_settings
from ..models import HistoryCount, HistorySeries, HistorySpread
from ..states import FAILURE
from . import sketch
from .buckets import (
    DAY,
    HOUR,
    MINUTE,
    MINUTE_RETENTION,
    QUARTER_DAY,
    TEN_MINUTES,
    Piece,
    ceil,
    cover,
    floor,
)
from .series import Dictionary, Key


@dataclass(frozen=True)
class Window:
    """The whole minutes a window covers: ``start`` (included) to ``end`` (excluded).

    ``start`` is the asked start, floored to the start of its chart bar (a minute, 10
    minutes, an hour, 6 hours or a day: :func:`bar_for`), so the first bar is whole and the
    window and the one before it read few fine buckets; later only where minute buckets
    are pruned (past :data:`MINUTE_RETENTION`: the next hour) or the history's retention
    ends. ``end`` is the end of the minute holding the asked end.
    """

    start: datetime
    end: datetime
    #: The chart's bar, in seconds.
    bar: int = 60

    def pieces(self, top: int = DAY) -> list[Piece]:
        """The buckets that add up to exactly this window, up to tier ``top``."""
        return cover(self.start, self.end, top)


#: The chart's bar for a window of at most this length: a minute up to 2 hours, 10 minutes
#: up to 12, an hour up to 2 days, 6 hours up to 8 days, then a day.
BARS = (
    (timedelta(hours=2), 60),
    (timedelta(hours=12), 600),
    (timedelta(days=2), 3600),
    (timedelta(days=8), 21_600),
)
#: Bar lengths the chart may use, and the tier whose buckets they are.
BAR_TIERS = {60: MINUTE, 600: TEN_MINUTES, 3600: HOUR, 21_600: QUARTER_DAY, 86_400: DAY}


def bar_for(length: timedelta) -> int:
    """The chart's bar, in seconds, for a window of ``length``."""
    return next((bar for longest, bar in BARS if length <= longest), 86_400)


def window(since: datetime, until: datetime, now: datetime) -> Window:
    """The window of whole minutes holding ``since`` to ``until`` that the history can count."""
    bar = bar_for(until - since)
    start = floor(since, BAR_TIERS[bar])
    oldest_hour = now - app_settings().HISTORY_RETENTION
    if start < now - MINUTE_RETENTION:
        start = ceil(start, HOUR)
    if start < oldest_hour:
        start = ceil(oldest_hour, DAY)
    end = floor(until, MINUTE) + timedelta(minutes=1)
    return Window(start, max(start, end), bar)


def in_pieces(pieces: list[Piece]) -> Q:
    """The buckets of ``pieces``, as one condition."""
    condition = Q(pk__in=[])
    for piece in pieces:
        condition |= Q(tier=piece.tier, bucket__gte=piece.start, bucket__lt=piece.end)
    return condition


@dataclass
class SeriesCount:
    """Finished tasks of one series in a window."""

    series: int
    key: Key
    count: int
    first: datetime
    last: datetime
    #: The latest task counted (set for FAILURE series).
    example: str = ""


def series_counts(
    span: Window, alias: str, dictionary: Dictionary | None = None
) -> list[SeriesCount]:
    """Every series' count in the window, with its first and last ``date_done``."""
    table = HistoryCount._default_manager.db_manager(alias)
    rows = (
        table.filter(in_pieces(span.pieces()))
        .values("series_id")
        .annotate(n=Sum("count"), first=Min("first_done"), last=Max("last_done"))
        .order_by()
    )
    found = {row["series_id"]: row for row in rows if row["n"]}
    keys = (dictionary or Dictionary(alias)).keys_of(set(found))
    counts = [
        SeriesCount(series, keys[series], row["n"], row["first"], row["last"])
        for series, row in found.items()
        if series in keys
    ]
    failed = {series for series, key in keys.items() if key.state == FAILURE}
    if failed:
        newest: dict[int, tuple[datetime, str]] = {}
        examples = table.filter(in_pieces(span.pieces()), series_id__in=sorted(failed))
        for series, last, example in examples.values_list("series_id", "last_done", "example"):
            if series not in newest or last > newest[series][0]:
                newest[series] = (last, example)
        for entry in counts:
            if entry.key.state == FAILURE:
                entry.example = newest[entry.series][1]
    return counts


def spreads(
    span: Window, alias: str, task_names: Collection[str] | None = None
) -> dict[tuple[str, str], sketch.Bins]:
    """Each task name's wait and run bins in the window: ``(task name, kind) → bins``.

    Of the ``task_names`` only, when given.
    """
    table = HistorySpread._default_manager.db_manager(alias).filter(in_pieces(span.pieces()))
    if task_names is not None:
        table = table.filter(task_name__in=sorted(task_names))
    merged: dict[tuple[str, str], sketch.Bins] = defaultdict(dict)
    rows = table.values_list("task_name", "bins")
    for name, stored in rows.iterator():
        for kind, bins in json.loads(stored).items():
            sketch.merge(merged[(name, kind)], bins)
    return merged


@dataclass
class Bar:
    """One bar of the chart: finished and failed tasks from ``start`` to ``end``."""

    start: datetime
    end: datetime
    done: int = 0
    failed: int = 0
    #: The bar reaches past the window (its first or last): it covers less than its length.
    partial: bool = False


def chart(span: Window, alias: str, until: datetime, task_name: str | None = None) -> list[Bar]:
    """The window in bars of its ``bar`` (aligned in UTC), each bar exact.

    Every task's, or ``task_name``'s alone.
    """
    bar_seconds = span.bar
    top = BAR_TIERS[bar_seconds]
    step = timedelta(seconds=bar_seconds)
    first = floor(span.start, top)
    bars: list[Bar] = []
    start = first
    while start < span.end:
        bars.append(Bar(start, start + step))
        start += step
    if not bars:
        return bars
    bars[0].partial = bars[0].start < span.start
    bars[-1].partial = bars[-1].end > until
    table = HistoryCount._default_manager.db_manager(alias).filter(in_pieces(span.pieces(top)))
    # The series by subquery, not a join: the small series table is read once (joined to
    # every count row, it cost MariaDB's 7-day chart 45 ms where the subquery takes 33).
    series = HistorySeries._default_manager.db_manager(alias)
    if task_name is not None:
        table = table.filter(series_id__in=series.filter(task_name=task_name).values("id"))
    failures = Q(series_id__in=series.filter(state=FAILURE).values("id"))
    rows = (
        table.values("bucket")
        .annotate(done=Sum("count"), failed=Sum("count", filter=failures))
        .order_by()
    )
    for row in rows:  # a bar's bucket, or a finer one at the window's edge
        index = int((row["bucket"] - first).total_seconds() // bar_seconds)
        if 0 <= index < len(bars):
            bars[index].done += row["done"]
            bars[index].failed += row["failed"] or 0
    return bars
