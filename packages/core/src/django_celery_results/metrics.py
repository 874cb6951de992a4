"""A Prometheus view of the rolled-up history: counters and histograms ``rate()`` can use.

Install the ``[prometheus]`` extra (``prometheus_client``) and route the view::

    from django_celery_results.metrics import metrics_view
    urlpatterns += [path("celery-results/metrics", metrics_view)]

It answers staff users who may view task results, and scrapers sending
``Authorization: Bearer <DJANGO_CELERY_RESULTS["METRICS_TOKEN"]>``. A scrape returns
running totals (``celery_results_tasks_total``, ``celery_results_task_exceptions_total``,
and wait and run time histograms) that never go down, with each label bounded to
``METRICS_MAX_LABEL_VALUES`` values, and gauges of what is true now (running, stuck and
PENDING tasks). ``?window=1h`` (deprecated) answers the window gauges of earlier releases
instead, now exact over the window's whole minutes.
"""

from __future__ import annotations

import hmac
import json
import math
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.db import router
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from . import report
from .conf import app_settings
from .history.series import Dictionary, Key
from .history.totals import BOUNDS
from .models import Counter, HistoryTotal, HistoryTotalSpread, TaskResult
from .utils import parse_span
from .workers.lifeline import AWAITING, SETTLED, UNCONSUMED
from .workers.status import STATES, STOPPED, latest_lives, statuses

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

#: The window when ``?window=`` is not given, and the longest one accepted.
DEFAULT_WINDOW = timedelta(hours=1)
MAX_WINDOW = timedelta(days=30)


class TotalsCollector:
    """Counters and histograms from the history's running totals, and what is true now."""

    def __init__(self, alias: str, now: report.Report | None = None) -> None:
        self.alias = alias
        self.now = now

    def collect(self) -> Iterator[Metric]:
        """Yield the counters, the histograms, then the gauges of running and waiting tasks."""
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        tasks = CounterMetricFamily(
            "celery_results_tasks",
            "Tasks that reached a final state, by task name, state, queue and worker.",
            labels=["task", "state", "queue", "worker"],
        )
        failures = CounterMetricFamily(
            "celery_results_task_exceptions",
            "Tasks that failed, by task name, exception type and worker.",
            labels=["task", "exception", "worker"],
        )
        by_outcome: dict[tuple[str, str, str, str], int] = {}
        by_exception: dict[tuple[str, str, str], int] = {}
        for key, count in running_totals(self.alias):
            outcome = (key.task_name, key.state, key.queue, key.worker)
            by_outcome[outcome] = by_outcome.get(outcome, 0) + count
            if key.state == "FAILURE":
                failed = (key.task_name, key.exception_type or "(unknown)", key.worker)
                by_exception[failed] = by_exception.get(failed, 0) + count
        for labels, count in sorted(by_outcome.items()):
            tasks.add_metric(list(labels), count)
        for labels_of_failure, count in sorted(by_exception.items()):
            failures.add_metric(list(labels_of_failure), count)
        yield tasks
        yield failures
        for kind, metric, what in (
            ("wait", "celery_results_task_wait_time_seconds", "sent (TRACK_PENDING) to started"),
            ("run", "celery_results_task_run_time_seconds", "started (track_started) to done"),
        ):
            family = HistogramMetricFamily(
                metric, f"Seconds from {what}, per task name.", labels=["task"]
            )
            for name, buckets, total in running_histograms(self.alias, kind):
                family.add_metric([name], buckets, total)
            yield family
        yield from worker_gauges(self.alias, GaugeMetricFamily)
        yield from lifeline_counters(self.alias, CounterMetricFamily)
        if self.now is None:
            return
        yield from now_gauges(self.now, GaugeMetricFamily)


class ReportCollector:
    """The window gauges of one :class:`report.Report` (``?window=``; deprecated)."""

    def __init__(self, numbers: report.Report) -> None:
        self.numbers = numbers

    def collect(self) -> Iterator[Metric]:
        """Yield the report's gauges."""
        from prometheus_client.core import GaugeMetricFamily

        numbers = self.numbers
        tasks = GaugeMetricFamily(
            "celery_results_tasks",
            "Tasks finished in the window, by task name, state and queue.",
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
                for quantile, value in (
                    ("0.5", spread.p50), ("0.95", spread.p95), ("0.99", spread.p99)
                ):  # fmt: skip
                    if value is not None:
                        family.add_metric([entry.task_name, quantile], value)
            yield family
        yield from now_gauges(numbers, GaugeMetricFamily)
        yield GaugeMetricFamily(
            "celery_results_window_seconds",
            "The length of the window these numbers cover, in seconds (whole minutes).",
            value=(numbers.covered_until - numbers.covered_since).total_seconds(),
        )
        yield GaugeMetricFamily(
            "celery_results_window_sampled",
            "Always 0: the numbers come from the rolled-up history, never from a sample.",
            value=0,
        )


def now_gauges(numbers: report.Report, family: Any) -> Iterator[Metric]:
    """Running and stuck tasks per worker, and the PENDING backlog: what is true now."""
    executing = family(
        "celery_results_worker_executing_tasks",
        "Tasks STARTED and not stuck (see celery_results_stuck_tasks), per worker.",
        labels=["worker"],
    )
    stuck = family(
        "celery_results_stuck_tasks",
        "Tasks STARTED on a registered worker that is no longer live (reason lost_worker), "
        "or for longer than their task name's p99 run time of the last day, or STUCK_AFTER "
        "(reason too_long), per worker.",
        labels=["worker", "reason"],
    )
    for load in numbers.workers:  # the busiest, and every one with a stuck task
        if load.running or load.stuck:
            executing.add_metric([load.worker], load.running)
            stuck.add_metric([load.worker, "lost_worker"], load.lost)
            stuck.add_metric([load.worker, "too_long"], load.overdue)
    yield executing
    yield stuck
    if numbers.backlog is not None:
        yield family(
            "celery_results_pending_tasks",
            "PENDING rows (TRACK_PENDING): sent, not started (within 7 days).",
            value=numbers.backlog.count,
        )
        if numbers.backlog.unconsumed is not None:
            yield family(
                "celery_results_unconsumed_pending_tasks",
                "PENDING rows older than UNCONSUMED_AFTER whose routing key no live worker "
                "consumes.",
                value=numbers.backlog.unconsumed,
            )
        oldest = numbers.backlog.oldest
        age = 0.0 if oldest is None else (numbers.until - oldest).total_seconds()
        yield family(
            "celery_results_pending_oldest_seconds",
            "Age of the oldest PENDING row, in seconds (0 without one).",
            value=age,
        )


def worker_gauges(alias: str, family: Any) -> Iterator[Metric]:
    """The worker registry: workers by state, and each running worker's heartbeat age."""
    found = latest_lives(statuses(alias))  # a node name's earlier lives are history
    by_state = family(
        "celery_results_workers",
        "Registered workers (each node name's latest start) by state: live, silent (missed 3 "
        "heartbeats) or stopped.",
        labels=["state"],
    )
    for state in STATES:
        by_state.add_metric([state], sum(1 for status in found if status.state == state))
    yield by_state
    bound = app_settings().METRICS_MAX_LABEL_VALUES
    running = [status for status in found if status.state != STOPPED][:bound]
    ages = family(
        "celery_results_worker_heartbeat_age_seconds",
        f"Seconds since each worker not stopped last beat (the {bound} latest, by the "
        "database's clock).",
        labels=["worker"],
    )
    for status in running:
        ages.add_metric([status.worker.hostname], status.age.total_seconds())
    yield ages
    for column, what in (("writes_retried", "retried after a transient error"),
                         ("writes_lost", "lost (refused for good)")):  # fmt: skip
        writes = family(
            f"celery_results_worker_{column}",
            f"Result writes each worker not stopped {what} since it started.",
            labels=["worker"],
        )
        for status in running:
            writes.add_metric([status.worker.hostname], getattr(status.worker, column))
        yield writes


def lifeline_counters(alias: str, family: Any) -> Iterator[Metric]:
    """What the lifeline settled, and marked awaiting redelivery, ever (``Counter`` rows)."""
    counted = dict(
        Counter._default_manager.db_manager(alias)
        .filter(name__in=(SETTLED, AWAITING, UNCONSUMED))
        .values_list("name", "value")
    )
    yield family(
        "celery_results_lifeline_settled",
        "STARTED tasks of lost workers the lifeline stored as FAILURE (WorkerLostError).",
        value=counted.get(SETTLED, 0),
    )
    yield family(
        "celery_results_lifeline_awaiting_redelivery",
        "acks_late tasks of lost workers the lifeline marked as awaiting redelivery.",
        value=counted.get(AWAITING, 0),
    )
    yield family(
        "celery_results_lifeline_unconsumed_settled",
        "PENDING tasks no live worker consumed that the lifeline stored as FAILURE "
        "(SETTLE_UNCONSUMED).",
        value=counted.get(UNCONSUMED, 0),
    )


def running_totals(alias: str) -> list[tuple[Key, int]]:
    """The stored running totals, by (bounded) series."""
    table = HistoryTotal._default_manager.db_manager(alias)
    rows = list(table.values_list("series_id", "count"))
    keys = Dictionary(alias).keys_of({series for series, _count in rows})
    return [(keys[series], count) for series, count in rows if series in keys]


def running_histograms(alias: str, kind: str) -> list[tuple[str, list[tuple[str, float]], float]]:
    """Each task name's cumulative histogram of ``kind`` seconds, as Prometheus wants it."""
    table = HistoryTotalSpread._default_manager.db_manager(alias).filter(kind=kind)
    found = []
    for name, stored, total in table.order_by("task_name").values_list(
        "task_name", "buckets", "total_seconds"
    ):
        counts = json.loads(stored) or [0] * (len(BOUNDS) + 1)
        cumulative, buckets = 0, []
        for bound, count in zip((*BOUNDS, math.inf), counts, strict=True):
            cumulative += count
            buckets.append(("+Inf" if bound == math.inf else repr(bound), float(cumulative)))
        found.append((name, buckets, total))
    return found


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
    registry = CollectorRegistry(auto_describe=False)
    if raw is None:
        now = timezone.now()
        numbers = report.build(now - DEFAULT_WINDOW, until=now)
        alias = router.db_for_read(TaskResult) or "default"
        registry.register(TotalsCollector(alias, numbers))
        return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
    window = parse_span(raw)
    if window is None or not timedelta(0) < window <= MAX_WINDOW:
        return HttpResponse(
            f"window={raw!r}: give a span such as 15m, 1h or 24h, at most 30d.\n",
            status=400,
            content_type="text/plain",
        )
    registry.register(ReportCollector(report.build(timezone.now() - window)))
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
