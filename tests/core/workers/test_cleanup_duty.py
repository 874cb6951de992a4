"""One ``celery.backend_cleanup`` per period, however many beats send it."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from celery import Celery
from celery.schedules import crontab, schedule

from django_celery_results.models import Lease
from django_celery_results.workers import cleanup_duty

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)


def elected(app: Celery) -> bool:
    with cleanup_duty.elected(app) as chosen:
        return chosen


def test_a_second_cleanup_in_the_period_is_skipped_and_logged(
    app: Celery, db_alias: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert elected(app)
    with caplog.at_level(logging.INFO, logger="django_celery_results.cleanup"):
        assert not elected(app)
    assert "Cleanup skipped" in caplog.text
    Lease.objects.update(expires_at=datetime(2000, 1, 1, tzinfo=UTC))  # the period is over
    assert elected(app)


def test_a_failed_cleanup_gives_the_lease_back(app: Celery, db_alias: str) -> None:
    def fail_while_elected() -> None:
        with cleanup_duty.elected(app) as chosen:
            assert chosen
            raise RuntimeError("the database went away")

    with pytest.raises(RuntimeError):
        fail_while_elected()
    assert elected(app)  # the next run may try again


def test_the_backend_s_cleanup_runs_once_per_period(app: Celery, db_alias: str) -> None:
    from django_celery_results.models import TaskResult

    app.backend.mark_as_done("old", 1)
    TaskResult.objects.update(date_done=datetime(2000, 1, 1, tzinfo=UTC))
    app.backend.cleanup()
    assert not TaskResult.objects.exists()
    app.backend.mark_as_done("old-too", 1)
    TaskResult.objects.update(date_done=datetime(2000, 1, 1, tzinfo=UTC))
    app.backend.cleanup()  # another beat's, in the same period
    assert TaskResult.objects.count() == 1


@pytest.mark.parametrize(
    ("every", "period"),
    [
        (600, timedelta(minutes=10)),
        (timedelta(hours=2), timedelta(hours=2)),
        (schedule(timedelta(minutes=30)), timedelta(minutes=30)),
        (crontab(minute=0, hour=4), None),  # not known: a short lease
    ],
)
def test_the_period_comes_from_the_beat_schedule(app: Celery, every: Any, period: Any) -> None:
    app.conf.beat_schedule = {"cleanup": {"task": "celery.backend_cleanup", "schedule": every}}
    assert cleanup_duty.period(app) == period


def test_without_an_entry_the_period_is_not_known(app: Celery) -> None:
    assert cleanup_duty.period(app) is None
