"""The "Task results dashboard" admin page: ``report.build`` over a chosen window, as HTML."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .. import report
from . import display

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin
    from django.http import HttpRequest

#: The windows offered: query value → (length, label).
WINDOWS = {
    "1h": (timedelta(hours=1), _("Last hour")),
    "24h": (timedelta(hours=24), _("Last 24 hours")),
    "7d": (timedelta(days=7), _("Last 7 days")),
}
DEFAULT_WINDOW = "24h"
#: The chart's drawing area, in SVG units.
CHART_WIDTH, CHART_HEIGHT = 900, 160


@dataclass
class Bar:
    """One bucket of the throughput chart, placed in the SVG."""

    x: float
    width: float
    done_y: float
    done_height: float
    failed_y: float
    failed_height: float
    title: str


#: Seconds in each bucket unit of ``report.throughput``, and its name on the page.
UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86_400}
UNIT_NAMES = {"minute": _("minute"), "hour": _("hour"), "day": _("day")}


def chart(buckets: list[report.Bucket], unit: str, since: datetime, until: datetime) -> list[Bar]:
    """Place each bucket's finished (and, in front, failed) count as bars over the window."""
    span = max((until - since).total_seconds(), float(UNIT_SECONDS[unit]))
    width = max(CHART_WIDTH * UNIT_SECONDS[unit] / span - 1, 2.0)
    tallest = max((bucket.done for bucket in buckets), default=0) or 1
    bars = []
    for bucket in buckets:
        offset = max((bucket.start - since).total_seconds(), 0.0)
        x = min(CHART_WIDTH * offset / span, CHART_WIDTH - width)
        done = CHART_HEIGHT * bucket.done / tallest
        failed = CHART_HEIGHT * bucket.failed / tallest
        when = display.to_the_second(bucket.start)
        bars.append(
            Bar(
                x=round(x, 1),
                width=round(width, 1),
                done_y=round(CHART_HEIGHT - done, 1),
                done_height=round(done, 1),
                failed_y=round(CHART_HEIGHT - failed, 1),
                failed_height=round(failed, 1),
                title=f"{when}: {bucket.done} done, {bucket.failed} failed",
            )
        )
    return bars


def dashboard_view(model_admin: ModelAdmin[Any], request: HttpRequest) -> TemplateResponse:
    """Render the dashboard for the window of ``?window=`` (1h, 24h or 7d)."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    chosen = request.GET.get("window", DEFAULT_WINDOW)
    if chosen not in WINDOWS:
        chosen = DEFAULT_WINDOW
    length, label = WINDOWS[chosen]
    until = timezone.now()
    numbers = report.build(until - length, until=until)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": _("Task results dashboard"),
        "opts": model_admin.model._meta,
        "report": numbers,
        "window": chosen,
        "window_label": label,
        "windows": [(key, name) for key, (_length, name) in WINDOWS.items()],
        "bars": chart(numbers.throughput, numbers.bucket, numbers.covered_since, until),
        "chart_start": display.to_the_second(numbers.covered_since),
        "chart_end": display.to_the_second(until),
        "chart_top": max((bucket.done for bucket in numbers.throughput), default=0),
        "bucket": UNIT_NAMES[numbers.bucket],
        "chart_width": CHART_WIDTH,
        "chart_height": CHART_HEIGHT,
        "tasks": [
            {
                "stats": entry,
                "failed": entry.states.get("FAILURE", 0),
                "wait_p50": display.duration(entry.waiting.p50),
                "wait_p95": display.duration(entry.waiting.p95),
                "run_p50": display.duration(entry.processing.p50),
                "run_p95": display.duration(entry.processing.p95),
            }
            for entry in sorted(numbers.tasks, key=lambda entry: -entry.total)
        ],
        "stuck_after": display.duration(numbers.stuck_after),
        "backlog_age": (
            display.duration(until - numbers.backlog.oldest)
            if numbers.backlog is not None and numbers.backlog.oldest is not None
            else None
        ),
        "covered_since": display.to_the_second(numbers.covered_since),
    }
    return TemplateResponse(request, "admin/django_celery_results/dashboard.html", context)
