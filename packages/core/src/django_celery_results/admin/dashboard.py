"""The "Task results dashboard" admin page: ``report.build`` over a chosen window, as HTML."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .. import report
from ..conf import app_settings
from ..history.backlog import MAX_BACKLOG, Sample
from ..history.windows import Bar
from ..stats import Spread, TaskStats
from . import display

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin
    from django.http import HttpRequest

#: The windows offered: query value → (length, label).
WINDOWS = {
    "15m": (timedelta(minutes=15), _("Last 15 minutes")),
    "1h": (timedelta(hours=1), _("Last hour")),
    "6h": (timedelta(hours=6), _("Last 6 hours")),
    "24h": (timedelta(hours=24), _("Last 24 hours")),
    "7d": (timedelta(days=7), _("Last 7 days")),
    "30d": (timedelta(days=30), _("Last 30 days")),
}
DEFAULT_WINDOW = "24h"
#: Auto-refresh periods offered, in seconds (0: off); a ``<meta>`` refresh, no JavaScript.
REFRESHES = (0, 30, 60)
#: The charts' drawing area, in SVG units, and the room left of it for the axis labels.
CHART_WIDTH, CHART_HEIGHT, FAILED_HEIGHT, AXIS = 900, 160, 60, 48
#: Time ticks drawn under the chart, about.
TICKS = 6
#: The backlog's sparklines, in SVG units.
SPARK_WIDTH, SPARK_HEIGHT = 120, 24
#: A percentile is flagged when it grew by this factor over the previous window…
SLOWER = 1.5
#: …and a failure rate when it grew by this many points (and at least doubled).
FAILING_MORE = 0.05


@dataclass
class Column:
    """One bar of the charts, placed in the SVG, with the link to its rows."""

    x: float
    width: float
    done_y: float
    done_height: float
    failed_y: float
    failed_height: float
    title: str
    href: str
    partial: bool


@dataclass
class Tick:
    """A label on an axis, and where it goes."""

    at: float
    label: str


def list_url(**filters: Any) -> str:
    """The task results list, filtered (``date_done__gte=…`` and such)."""
    query = urlencode({key: value for key, value in filters.items() if value is not None})
    return f"{reverse('admin:django_celery_results_taskresult_changelist')}?{query}"


def columns(bars: list[Bar], task: str | None) -> tuple[list[Column], int, int]:
    """Place each bar: finished on the main chart, failed on its own scale below it."""
    tallest = max((bar.done for bar in bars), default=0) or 1
    most_failed = max((bar.failed for bar in bars), default=0) or 1
    width = (CHART_WIDTH - AXIS) / max(len(bars), 1)
    placed = []
    for index, bar in enumerate(bars):
        done_height = CHART_HEIGHT * bar.done / tallest
        failed_height = FAILED_HEIGHT * bar.failed / most_failed
        start, end = display.to_the_second(bar.start), display.to_the_second(bar.end)
        title = f"{start} to {end}: {bar.done} finished, {bar.failed} failed"
        if bar.partial:
            title += " (partial)"
        placed.append(
            Column(
                x=round(AXIS + index * width, 1),
                width=round(max(width - 1, 1.0), 1),
                done_y=round(CHART_HEIGHT - done_height, 1),
                done_height=round(done_height, 1),
                failed_y=round(FAILED_HEIGHT - failed_height, 1),
                failed_height=round(failed_height, 1),
                title=title,
                href=list_url(
                    date_done__gte=bar.start.isoformat(),
                    date_done__lt=bar.end.isoformat(),
                    task_name__exact=task,
                ),
                partial=bar.partial,
            )
        )
    return (
        placed,
        max((bar.done for bar in bars), default=0),
        max((bar.failed for bar in bars), default=0),
    )


def time_ticks(bars: list[Bar]) -> list[Tick]:
    """About :data:`TICKS` labels under the chart, at bar starts."""
    if not bars:
        return []
    every = max(len(bars) // TICKS, 1)
    width = (CHART_WIDTH - AXIS) / len(bars)
    same_day = bars[0].start.date() == bars[-1].end.date()
    ticks = []
    for index in range(0, len(bars), every):
        when = display.local(bars[index].start)
        label = when.strftime("%H:%M") if same_day else when.strftime("%m-%d %H:%M")
        ticks.append(Tick(round(AXIS + index * width, 1), label))
    return ticks


def change(now: float | None, before: float | None, worse: float) -> str:
    """``"worse"`` when ``now`` grew past ``before * worse``, else ``""``."""
    if now is None or before is None or before <= 0:
        return ""
    return "worse" if now > before * worse else ""


def task_row(entry: TaskStats, before: TaskStats | None, length: timedelta) -> dict[str, Any]:
    """One line of the tasks table: this window's numbers beside the previous window's."""
    minutes = max(length.total_seconds() / 60, 1)
    rate, rate_before = entry.failure_rate, before.failure_rate if before else None
    failing = (
        rate is not None
        and rate_before is not None
        and rate >= rate_before + FAILING_MORE
        and rate >= 2 * rate_before
    )
    return {
        "stats": entry,
        "before": before,
        "failed": entry.states.get("FAILURE", 0),
        "per_minute": f"{entry.total / minutes:.1f}",
        "per_minute_before": "-" if before is None else f"{before.total / minutes:.1f}",
        "failure_rate": _percent(rate),
        "failure_rate_before": _percent(rate_before),
        "failing": failing,
        "wait": _spread(entry.waiting, before.waiting if before else None),
        "run": _spread(entry.processing, before.processing if before else None),
    }


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.1%}"


def _spread(now: Spread, before: Spread | None) -> dict[str, Any]:
    cells = []
    for name in ("p50", "p95", "p99"):
        value, earlier = getattr(now, name), getattr(before, name) if before else None
        cells.append(
            {
                "name": name,
                "value": display.duration(value),
                "before": display.duration(earlier),
                "flag": change(value, earlier, SLOWER),
            }
        )
    return {"measured": now.count > 0, "cells": cells}


def dashboard_view(model_admin: ModelAdmin[Any], request: HttpRequest) -> TemplateResponse:
    """Render the dashboard for ``?window=`` (15m … 30d), ``?task=`` and ``?refresh=``."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    chosen = request.GET.get("window", DEFAULT_WINDOW)
    if chosen not in WINDOWS:
        chosen = DEFAULT_WINDOW
    length, label = WINDOWS[chosen]
    refresh = request.GET.get("refresh", "0")
    seconds = int(refresh) if refresh.isdigit() and int(refresh) in REFRESHES else 0
    until = timezone.now()
    wanted = request.GET.get("task") or None
    numbers = report.build(until - length, until=until, compare=True, chart_task=wanted)
    names = [entry.task_name for entry in numbers.tasks]
    task = numbers.chart_task
    placed, top, failed_top = columns(numbers.throughput, task)
    covered = numbers.covered_until - numbers.covered_since
    context = {
        **model_admin.admin_site.each_context(request),
        "title": _("Task results dashboard"),
        "opts": model_admin.model._meta,
        "report": numbers,
        "max_backlog": MAX_BACKLOG,
        "window": chosen,
        "window_label": label,
        "windows": [(key, name) for key, (_length, name) in WINDOWS.items()],
        "refresh": seconds,
        "refreshes": REFRESHES,
        "task": task,
        "task_names": names,
        "bars": placed,
        "ticks": time_ticks(numbers.throughput),
        "chart_top": top,
        "failed_top": failed_top,
        "bar_length": display.duration(numbers.bar_seconds),
        "chart_width": CHART_WIDTH,
        "chart_height": CHART_HEIGHT,
        "failed_height": FAILED_HEIGHT,
        "axis": AXIS,
        "covered_since": display.to_the_second(numbers.covered_since),
        "covered_until": display.to_the_second(numbers.covered_until),
        "covered_length": display.duration(covered),
        "shortened": numbers.covered_since > numbers.since + timedelta(minutes=1),
        "caught_up_at": display.to_the_second(numbers.history.caught_up_at),
        "tasks": [
            task_row(entry, numbers.previous.get(entry.task_name), covered)
            for entry in sorted(numbers.tasks, key=lambda entry: -entry.total)
        ],
        "incidents": [
            {
                "incident": incident,
                "first": display.to_the_second(incident.first),
                "last": display.to_the_second(incident.last),
                "href": list_url(
                    status__exact="FAILURE",
                    task_name__exact=incident.task_name or None,
                    exception_type__exact=incident.type,
                    date_done__gte=numbers.covered_since.isoformat(),
                ),
            }
            for incident in numbers.incidents[: report.TOP * 2]
        ],
        "workers": [
            {
                "load": load,
                "failure_rate": _percent(load.failure_rate),
                "state": display.state_badge(load.state, display.WORKER_STATE_CLASSES)
                if load.state
                else _("unregistered"),
                "heartbeat": _seconds_ago(load.heartbeat_age),
            }
            for load in numbers.workers
        ],
        "stuck_after": display.duration(numbers.stuck_after),
        "unconsumed_after": display.duration(app_settings().UNCONSUMED_AFTER),
        "backlog_age": _age(until, numbers.backlog.oldest if numbers.backlog else None),
        "backlog_rows": backlog_rows(numbers.backlog, numbers.covered_since, until),
        "spark_width": SPARK_WIDTH,
        "spark_height": SPARK_HEIGHT,
    }
    return TemplateResponse(request, "admin/django_celery_results/dashboard.html", context)


def _seconds_ago(seconds: float | None) -> str:
    """``12 s ago`` (rounded to the second), or "-" when unknown."""
    if seconds is None:
        return "-"
    return _("%(duration)s ago") % {"duration": display.duration(round(seconds))}


@dataclass
class QueueBacklog:
    """One queue's row of the backlog table: PENDING now, and its samples as a sparkline."""

    queue: str
    now: int
    #: The window's first sample, and the largest one.
    first: Sample | None
    peak: int
    #: A sample counted only the first 100,000 PENDING rows: its counts are lower bounds.
    capped: bool
    first_at: str
    #: The sparkline's ``points``, in SVG units (empty without samples).
    points: str


def backlog_rows(
    backlog: report.Backlog | None, since: datetime, until: datetime
) -> list[QueueBacklog]:
    """Every queue waiting now or sampled in the window, the largest backlog first."""
    if backlog is None:
        return []
    rows = []
    span = max((until - since).total_seconds(), 1.0)
    for queue in {**backlog.queues, **backlog.trend}:
        samples = backlog.trend.get(queue, [])
        peak = max((sample.count for sample in samples), default=0)
        placed = [
            (
                SPARK_WIDTH * max((sample.at - since).total_seconds(), 0) / span,
                SPARK_HEIGHT - SPARK_HEIGHT * sample.count / max(peak, 1),
            )
            for sample in samples
        ]
        if len(placed) == 1:  # one point draws nothing: a short dash at its time
            ((x, y),) = placed
            placed = [(max(x - 2, 0), y), (min(x + 2, SPARK_WIDTH), y)]
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y in placed)
        first = samples[0] if samples else None
        rows.append(
            QueueBacklog(
                queue=queue,
                now=backlog.queues.get(queue, 0),
                first=first,
                peak=peak,
                capped=any(sample.capped for sample in samples),
                first_at=display.to_the_second(first.at) if first else "",
                points=points,
            )
        )
    return sorted(rows, key=lambda row: (-row.now, -row.peak, row.queue))


def _age(until: datetime, oldest: datetime | None) -> str | None:
    return None if oldest is None else display.duration(until - oldest)
