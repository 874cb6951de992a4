"""The worker registry with real workers: a worker registers, beats and stops on its own."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from django_celery_results.models import Worker as WorkerRow
from django_celery_results.testing.router import use_alias

from .conftest import Brokers, Combo, Worker, combo_params, wait_until

COMBOS = [
    Combo("default", "generic", "redis", "prefork"),
    Combo("postgres", "vendor", "rabbitmq", "prefork"),
    Combo("mysql", "vendor", "redis", "threads"),
]
pytestmark = pytest.mark.parametrize("combo", combo_params(COMBOS), indirect=True, scope="module")


@pytest.fixture
def worker(
    combo: Combo, brokers: Brokers, django_db_setup: None, django_db_blocker: Any
) -> Iterator[Worker]:
    """A worker beating every half second, under a node name of its own."""
    brokers.ensure(combo.broker)
    queue = f"e2e-{uuid.uuid4().hex[:10]}"
    started = Worker(combo, queue=queue, extra_env={"DEMO_WORKER_HEARTBEAT": "0.5"})
    started.start()
    use_alias(combo.alias)
    try:
        yield started
    finally:
        use_alias(None)
        started.stop()


def row_of(worker: Worker) -> WorkerRow | None:
    """This worker process's life (a restart under its node name is another row)."""
    pid = worker.process.pid if worker.process else -1
    return WorkerRow.objects.filter(hostname__startswith=f"{worker.queue}@", pid=pid).first()


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_a_worker_registers_beats_and_stops(worker: Worker, combo: Combo) -> None:
    first = wait_until(lambda: row_of(worker), what="the worker to register")
    assert worker.process is not None
    assert first.pid == worker.process.pid
    assert [queue["queue"] for queue in json.loads(first.queues)] == [worker.queue]
    assert first.concurrency == 2
    assert first.pool.endswith(("prefork.TaskPool", "thread.TaskPool"))
    assert "celery" in json.loads(first.software)
    assert first.stopped_at is None
    later = wait_until(
        lambda: (row := row_of(worker)) and row.heartbeat_at > first.heartbeat_at and row,
        what="a heartbeat",
    )
    assert later.started_at == first.started_at
    worker.stop()  # SIGTERM: a warm shutdown
    stopped = row_of(worker)
    assert stopped is not None
    assert stopped.stopped_at is not None


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_a_killed_worker_is_not_marked_stopped(worker: Worker, combo: Combo) -> None:
    registered = wait_until(lambda: row_of(worker), what="the worker to register")
    worker.kill()  # SIGKILL: no shutdown at all
    row = row_of(worker)
    assert row is not None
    assert row.stopped_at is None
    assert row.heartbeat_at >= registered.heartbeat_at
