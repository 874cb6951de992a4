"""The worker registry's rows, on every database: registered, beating and stopped on its clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connections
from django.db.models.functions import Now
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_celery_results.models import Worker
from django_celery_results.workers import registry
from django_celery_results.workers.registry import WorkerInfo

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)


def queue(name: str) -> dict[str, str]:
    """A queue bound to the default direct exchange by its own name."""
    return {"queue": name, "exchange": "", "type": "direct", "routing_key": name}


INFO = WorkerInfo(
    "celery@a", "host-a", 101, "celery.concurrency.prefork.TaskPool", 4,
    (queue("b"), queue("a")), {"celery": "5.5.3"}, "a" * 32,
)  # fmt: skip


def database_now(alias: str) -> Any:
    """The database's own clock, read back through the ORM's conversions."""
    return (
        Worker._default_manager.db_manager(alias)
        .annotate(now=Now())
        .values_list("now", flat=True)[0]
    )


def test_a_worker_registers_with_what_it_is(db_alias: str) -> None:
    registry.register(INFO, db_alias)
    row = Worker.objects.get(hostname="celery@a")
    assert (row.host, row.pid, row.pool, row.concurrency) == (
        "host-a", 101, "celery.concurrency.prefork.TaskPool", 4,
    )  # fmt: skip
    assert [q["queue"] for q in json.loads(row.queues)] == ["a", "b"]
    assert row.boot == "a" * 32
    assert json.loads(row.software) == {"celery": "5.5.3"}
    assert row.stopped_at is None
    assert row.started_at == row.heartbeat_at


def test_times_are_the_databases_not_the_workers(
    db_alias: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker whose clock is a day off still registers and beats at the database's time."""
    monkeypatch.setattr(timezone, "now", lambda: datetime(2001, 1, 1, tzinfo=UTC))
    registry.register(INFO, db_alias)
    monkeypatch.undo()
    row = Worker.objects.get(hostname="celery@a")
    assert abs(row.started_at - database_now(db_alias)) < timedelta(minutes=1)


def test_a_heartbeat_moves_only_the_heartbeat(db_alias: str) -> None:
    registry.register(INFO, db_alias)
    Worker.objects.update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    before = Worker.objects.get()
    registry.beat(INFO, db_alias)
    after = Worker.objects.get()
    assert after.heartbeat_at > before.heartbeat_at
    assert after.started_at == before.started_at


def test_a_heartbeat_is_one_statement(db_alias: str) -> None:
    registry.register(INFO, db_alias)
    with CaptureQueriesContext(connections[db_alias]) as captured:
        registry.beat(INFO, db_alias)
    assert len(captured) == 1


def test_a_warm_shutdown_marks_the_life_stopped_and_a_restart_is_a_new_life(
    db_alias: str,
) -> None:
    registry.register(INFO, db_alias)
    registry.stop(INFO, db_alias)
    assert Worker.objects.get().stopped_at is not None
    again = WorkerInfo("celery@a", "host-a", 102, boot="b" * 32)
    ended = registry.register(again, db_alias)
    assert [row.boot for row in ended] == [INFO.boot]  # stopped: its orphans are settled now
    lives = dict(Worker.objects.values_list("boot", "stopped_at"))
    assert lives[INFO.boot] is not None
    assert lives[again.boot] is None


def test_twins_under_one_node_name_each_keep_their_row(db_alias: str) -> None:
    """Another process started under the same node name: neither takes the other's row."""
    registry.register(INFO, db_alias)
    twin = WorkerInfo("celery@a", "host-b", 202, boot="b" * 32)
    assert registry.register(twin, db_alias) == []  # the first may be running: not ended
    registry.beat(INFO, db_alias)
    registry.beat(twin, db_alias)
    assert sorted(Worker.objects.values_list("host", "pid")) == [("host-a", 101), ("host-b", 202)]


def test_cleanup_forgets_workers_silent_for_a_week(db_alias: str) -> None:
    from django_celery_results.cleanup import run

    registry.register(INFO, db_alias)
    registry.register(WorkerInfo("celery@old", "host-b", 202, boot="c" * 32), db_alias)
    Worker.objects.filter(hostname="celery@old").update(
        heartbeat_at=database_now(db_alias) - timedelta(days=8)
    )
    report = run([])
    assert report.workers_pruned == 1
    assert list(Worker.objects.values_list("hostname", flat=True)) == ["celery@a"]


def test_a_heartbeat_carries_the_write_counts(db_alias: str) -> None:
    from django_celery_results.losses import WriteCounts

    registry.register(INFO, db_alias)
    counts = WriteCounts()
    counts.add(retried=3, lost=1)
    registry.beat(INFO, db_alias, counts)
    row = Worker.objects.get()
    assert (row.writes_retried, row.writes_lost) == (3, 1)


@pytest.mark.parametrize(
    ("earlier", "gone"),
    [
        pytest.param({"stopped_at": True}, True, id="stopped"),
        pytest.param({"silent": True}, True, id="silent"),
        pytest.param({"pid": 999_999_999}, True, id="same host, its pid no longer runs"),
        pytest.param({"pid": "mine"}, False, id="same host and pid: maybe another namespace"),
        pytest.param({"host": "elsewhere"}, False, id="a fresh twin on another host"),
        pytest.param({"pid": 1}, False, id="a fresh twin on this host, its pid running"),
    ],
)
def test_a_restart_judges_whether_its_earlier_life_ended(
    db_alias: str, earlier: dict[str, Any], gone: bool
) -> None:
    import os

    first = WorkerInfo("celery@a", "host-a", 4242, boot="1" * 32)
    registry.register(first, db_alias)
    changes: dict[str, Any] = {}
    if earlier.get("stopped_at"):
        changes["stopped_at"] = timezone.now()
    if earlier.get("silent"):
        changes["heartbeat_at"] = database_now(db_alias) - timedelta(minutes=10)
    if "pid" in earlier:
        changes["pid"] = os.getpid() if earlier["pid"] == "mine" else earlier["pid"]
    if "host" in earlier:
        changes["host"] = earlier["host"]
    Worker.objects.update(**changes)
    again = WorkerInfo("celery@a", "host-a", os.getpid(), boot="2" * 32)
    found = registry.register(again, db_alias)
    assert [row.boot for row in found] == (["1" * 32] if gone else [])
    assert Worker.objects.count() == 2  # each life keeps its row
