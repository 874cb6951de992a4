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
        hostname="celery@a", pid=1, started_at=beat, heartbeat_at=beat, interval=15,
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
    status = state_of(row(age, stopped=stopped), NOW)
    assert (status.state, status.age) == (state, age)


def test_a_heartbeat_from_the_future_is_not_a_negative_age() -> None:
    assert state_of(row(timedelta(seconds=-5)), NOW).age == timedelta(0)


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


def test_a_life_is_judged_by_its_own_interval() -> None:
    slow = row(timedelta(seconds=100))
    slow.interval = 60  # it beats every minute: 100 s is fewer than three missed beats
    assert state_of(slow, NOW).state == LIVE


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_each_node_name_s_latest_life(db_alias: str) -> None:
    from django_celery_results.workers.status import latest_lives

    registry.register(WorkerInfo("celery@a", "h", 1), db_alias)
    registry.register(WorkerInfo("celery@a", "h", 2), db_alias)  # a restart, or a twin
    Worker.objects.filter(pid=1).update(heartbeat_at=datetime.now(UTC) - timedelta(hours=1))
    found = statuses(db_alias)
    assert len(found) == 2
    assert [(s.worker.pid, s.state) for s in latest_lives(found)] == [(2, LIVE)]
