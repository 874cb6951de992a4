"""Timeline statistics per task name, computed in the database."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from celery import states
from django.utils import timezone

from .helpers import new_id, row

#: What a driver's ``from django_celery_results.testing.suite import *`` takes.
__all__ = ["TestTimelineStats", "timeline"]


@pytest.fixture
def timeline(driver: Any) -> str:
    """Store five finished runs of one task and a running one of another; return a suffix.

    Waiting times are 1…5 s and processing times 10…50 s; one of the five failed.
    """
    suffix = new_id()[:8]
    base = timezone.now() - timedelta(minutes=10)
    for n in range(1, 6):
        task_id, name = new_id(), f"stats.a.{suffix}"
        sent, started = base, base + timedelta(seconds=n)
        done = started + timedelta(seconds=10 * n)
        final = states.FAILURE if n == 5 else states.SUCCESS
        driver.ops.store_pending_results(
            [row(task_id, states.PENDING, date_done=sent, task_name=name)]
        )
        driver.ops.store_task_results(
            [row(task_id, states.STARTED, date_done=started, date_started=started)]
        )
        driver.ops.store_task_results([row(task_id, final, date_done=done)])
    running = new_id()
    driver.ops.store_task_results(
        [row(running, states.STARTED, task_name=f"stats.b.{suffix}", date_started=base)]
    )
    return suffix


class TestTimelineStats:
    """``timeline_stats``: counts, failure rate, waiting and processing spreads."""

    def test_counts_and_spreads(self, driver: Any, timeline: str) -> None:
        names = [f"stats.a.{timeline}", f"stats.b.{timeline}"]
        since = timezone.now() - timedelta(hours=1)
        finished, running = driver.ops.timeline_stats(since, names)
        assert finished.task_name == names[0]
        assert finished.states == {states.SUCCESS: 4, states.FAILURE: 1}
        assert finished.failure_rate == pytest.approx(0.2)
        assert finished.waiting.p50 == pytest.approx(3.0)
        # percentile_cont interpolates (4.8); nearest rank picks a value (5.0).
        assert 4.8 - 1e-6 <= finished.waiting.p95 <= 5.0 + 1e-6
        assert finished.waiting.max == pytest.approx(5.0)
        assert finished.processing.p50 == pytest.approx(30.0)
        assert finished.processing.max == pytest.approx(50.0)
        assert running.states == {states.STARTED: 1}
        assert running.failure_rate is None
        assert running.processing.max is None

    def test_window_and_names_filter(self, driver: Any, timeline: str) -> None:
        assert driver.ops.timeline_stats(timezone.now(), [f"stats.a.{timeline}"]) == []
        since = timezone.now() - timedelta(hours=1)
        only = driver.ops.timeline_stats(since, [f"stats.b.{timeline}"])
        assert [s.task_name for s in only] == [f"stats.b.{timeline}"]
