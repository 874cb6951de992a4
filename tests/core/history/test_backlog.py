"""The backlog's trend: a sample of PENDING rows per queue, once a minute."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from django_celery_results import report
from django_celery_results.history import backlog
from django_celery_results.history.buckets import HOUR, MINUTE, floor
from django_celery_results.models import HistoryBacklog, TaskResult

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)
TRACKED = override_settings(DJANGO_CELERY_RESULTS={"TRACK_PENDING": True})  # the dashboard's


def waiting(task_id: str, queue: str) -> None:
    TaskResult.objects.create(task_id=task_id, status="PENDING", queue=queue)


def counts(bucket_tier: int = MINUTE) -> dict[tuple[str, str], int]:
    rows = HistoryBacklog.objects.filter(tier=bucket_tier).order_by("bucket")
    return {(row.bucket.strftime("%H:%M"), row.queue): row.count for row in rows}


def test_a_minute_is_sampled_once_and_an_emptied_queue_comes_down(db_alias: str) -> None:
    start = floor(timezone.now(), HOUR) + timedelta(minutes=5)
    waiting("a", "fast")
    waiting("b", "fast")
    waiting("c", "slow")
    assert backlog.sample(db_alias, start)
    waiting("d", "fast")
    assert not backlog.sample(db_alias, start + timedelta(seconds=30))  # the same minute
    TaskResult.objects.filter(queue="slow").update(status="STARTED")
    assert backlog.sample(db_alias, start + timedelta(minutes=1))
    TaskResult.objects.filter(queue="fast").update(status="STARTED")
    assert backlog.sample(db_alias, start + timedelta(minutes=2))  # nothing waits
    trend = backlog.trend(db_alias, start, start + timedelta(minutes=3))
    assert {queue: [s.count for s in samples] for queue, samples in trend.items()} == {
        "fast": [2, 3, 0],
        "slow": [1, 0, 0],
    }
    assert not any(sample.capped for samples in trend.values() for sample in samples)
    # The hour keeps its first sample alone.
    assert counts(HOUR) == {
        (start.strftime("%H:00"), "fast"): 2,
        (start.strftime("%H:00"), "slow"): 1,
    }


def test_a_sample_past_the_cap_says_so(db_alias: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backlog, "MAX_BACKLOG", 2)
    for n in range(4):
        waiting(f"w{n}", "busy")
    now = timezone.now()
    assert backlog.sample(db_alias, now)
    [only] = backlog.trend(db_alias, now - timedelta(minutes=1), now + timedelta(minutes=1))[
        "busy"
    ]
    assert (only.count, only.capped) == (3, True)  # the first MAX_BACKLOG + 1 rows


@TRACKED
def test_the_dashboards_report_carries_the_trend(db_alias: str) -> None:
    now = timezone.now()
    earlier, later = now - timedelta(minutes=2), now - timedelta(minutes=1)
    waiting("a", "fast")
    backlog.sample(db_alias, earlier)
    waiting("b", "fast")
    backlog.sample(db_alias, later)
    trend = report.build(now - timedelta(minutes=15)).backlog.trend  # type: ignore[union-attr]
    assert [sample.count for sample in trend["fast"]] == [1, 2]
    # Seven days draw from the hours: each hour's first sample.
    week = report.build(now - timedelta(days=7)).backlog.trend  # type: ignore[union-attr]
    hours = [1] if floor(earlier, HOUR) == floor(later, HOUR) else [1, 2]
    assert [sample.count for sample in week["fast"]] == hours
