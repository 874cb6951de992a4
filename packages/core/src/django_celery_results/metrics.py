"""A Prometheus view of the results table: ``report.build`` over a recent window, as metrics.

Install the ``[prometheus]`` extra (``prometheus_client``) and route the view::

    from django_celery_results.metrics import metrics_view
    urlpatterns += [path("celery-results/metrics", metrics_view)]

It answers staff users who may view task results, and scrapers sending
``Authorization: Bearer <DJANGO_CELERY_RESULTS["METRICS_TOKEN"]>``. Every number is a
gauge over the window (``?window=1h`` by default, at most 7 days) and, like the dashboard,
over at most its newest ``report.MAX_ROWS`` rows. Names follow Flower's where one means
the same (``flower_task_runtime_seconds`` → ``celery_results_task_runtime_seconds``), so
dashboards built for Flower adapt by renaming.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from . import report
from .conf import app_settings
from .utils import parse_span

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

#: The window when ``?window=`` is not given, and the longest one accepted.
DEFAULT_WINDOW = timedelta(hours=1)
MAX_WINDOW = timedelta(days=7)


class ReportCollector:
    """A ``prometheus_client`` collector of one :class:`report.Report`."""

    def __init__(self, numbers: report.Report) -> None:
        self.numbers = numbers

    def collect(self) -> Iterator[Metric]:
        """Yield the report's gauges."""
        from prometheus_client.core import GaugeMetricFamily

        numbers = self.numbers
        tasks = GaugeMetricFamily(
            "celery_results_tasks",
            "Task results done in the window, by task name, state and queue.",
            labels=["task", "state", "queue"],
        )
        for name, state, queue, count in numbers.counts:
            tasks.add_metric([name, state, queue], count)
        yield tasks
        for metric, attribute, what in (
            ("celery_results_task_wait_seconds", "waiting", "sent (or first written) to started"),
            ("celery_results_task_runtime_seconds", "processing", "started to done"),
        ):
            family = GaugeMetricFamily(
                metric, f"Quantiles of the time from {what}, per task name.",
                labels=["task", "quantile"],
            )  # fmt: skip
            for entry in numbers.tasks:
                spread = getattr(entry, attribute)
                for quantile, value in (("0.5", spread.p50), ("0.95", spread.p95)):
                    if value is not None:
                        family.add_metric([entry.task_name, quantile], value)
            yield family
        executing = GaugeMetricFamily(
            "celery_results_worker_executing_tasks",
            "Tasks whose row is STARTED, per worker (written in the window).",
            labels=["worker"],
        )
        stuck = GaugeMetricFamily(
            "celery_results_stuck_tasks",
            "Tasks STARTED for longer than STUCK_AFTER (within 7 days), per worker.",
            labels=["worker"],
        )
        for load in numbers.workers:
            executing.add_metric([load.worker], load.running)
            stuck.add_metric([load.worker], load.stuck)
        yield executing
        yield stuck
        if numbers.backlog is not None:
            yield GaugeMetricFamily(
                "celery_results_pending_tasks",
                "PENDING rows (TRACK_PENDING): sent, not started (within 7 days).",
                value=numbers.backlog.count,
            )
            oldest = numbers.backlog.oldest
            age = 0.0 if oldest is None else (numbers.until - oldest).total_seconds()
            yield GaugeMetricFamily(
                "celery_results_pending_oldest_seconds",
                "Age of the oldest PENDING row, in seconds (0 without one).",
                value=age,
            )
        yield GaugeMetricFamily(
            "celery_results_window_seconds",
            "The length of the window these numbers cover, in seconds.",
            value=(numbers.until - numbers.covered_since).total_seconds(),
        )
        yield GaugeMetricFamily(
            "celery_results_window_sampled",
            "1 when the window held more rows than a scrape reads (its newest are counted).",
            value=1 if numbers.sampled else 0,
        )


def allowed(request: HttpRequest) -> bool:
    """A staff user who may view task results, or the configured bearer token."""
    token = app_settings().METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer "):
        return hmac.compare_digest(header.removeprefix("Bearer ").encode(), token.encode())
    user = getattr(request, "user", None)
    return bool(
        user is not None
        and user.is_active
        and user.is_staff
        and user.has_perm("django_celery_results.view_taskresult")
    )


def metrics_view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """Answer a scrape with the Prometheus text format."""
    try:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    except ImportError:  # pragma: no cover - the extra is missing
        return HttpResponse(
            "prometheus_client is not installed: pip install 'django-celery-results[prometheus]'",
            status=501,
            content_type="text/plain",
        )
    if not allowed(request):
        return HttpResponse(
            "Staff login or 'Authorization: Bearer <METRICS_TOKEN>' required.\n",
            status=403,
            content_type="text/plain",
        )
    raw = request.GET.get("window")
    window = DEFAULT_WINDOW if raw is None else parse_span(raw)
    if window is None or not timedelta(0) < window <= MAX_WINDOW:
        return HttpResponse(
            f"window={raw!r}: give a span such as 15m, 1h or 24h, at most 7d.\n",
            status=400,
            content_type="text/plain",
        )
    numbers = report.build(timezone.now() - window)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ReportCollector(numbers))
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
