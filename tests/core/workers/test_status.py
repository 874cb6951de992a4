"""A registered worker's state: live, silent past three missed heartbeats, or stopped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from django_celery_results.models import Worker
from django_celery_results.workers import registry
from django_celery_results.workers.registry import WorkerInfo
from django_celery_results.workers.status import LIVE, SILENT, STOPPED, state_of, statuses

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def row(heartbeat: timedelta, *, stopped: bool = False) -> Worker:
    beat = NOW - heartbeat
    return Worker(
        hostname="celery@a", pid=1, started_at=beat, heartbeat_at=beat,
        stopped_at=beat if stopped else None,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("age", "stopped", "state"),
    [
        (timedelta(seconds=10), False, LIVE),
        (timedelta(seconds=45), False, LIVE),  # three beats of 15 s: still live
        (timedelta(seconds=46), False, SILENT),
        (timedelta(seconds=10), True, STOPPED),
        (timedelta(days=3), True, STOPPED),
    ],
)
def test_the_state_is_the_heartbeat_s_age(age: timedelta, stopped: bool, state: str) -> None:
    status = state_of(row(age, stopped=stopped), NOW, interval=15)
    assert (status.state, status.age) == (state, age)


def test_a_heartbeat_from_the_future_is_not_a_negative_age() -> None:
    assert state_of(row(timedelta(seconds=-5)), NOW, interval=15).age == timedelta(0)


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_statuses_are_read_by_the_database_s_clock(db_alias: str) -> None:
    registry.register(WorkerInfo("celery@old", "h", 1), db_alias)
    registry.register(WorkerInfo("celery@new", "h", 2), db_alias)
    Worker.objects.filter(hostname="celery@old").update(
        heartbeat_at=datetime.now(UTC) - timedelta(hours=1)
    )
    found = statuses(db_alias)
    assert [(s.worker.hostname, s.state) for s in found] == [
        ("celery@new", LIVE),
        ("celery@old", SILENT),
    ]
