"""The lifeline with real prefork workers: lost workers' tasks are settled, live ones never.

Workers beat every half second with a grace of two seconds (the defaults are 15 s and
60 s); every wait is bounded. Each test starts its own workers under node names of their
own, on queues of their own.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from typing import Any

import pytest
from celery import Celery, states
from django.db.models.functions import Now

from django_celery_results.models import Counter, TaskResult
from django_celery_results.models import Worker as WorkerRow
from django_celery_results.testing.router import use_alias
from django_celery_results.workers.lifeline import SETTLED

from .conftest import Brokers, Combo, Worker, client_app, combo_params, shared, wait_until
from .proxy import TcpProxy

HEARTBEAT, GRACE = 0.5, 2.0
#: How late past "two heartbeat intervals plus the grace" a settlement may be seen: the
#: test's own polling, and a loaded CI machine.
SLACK = 6.0
FAST = {"DEMO_WORKER_HEARTBEAT": str(HEARTBEAT), "DEMO_LIFELINE_GRACE": str(GRACE)}
T = "demo_app.tasks."

PREFORK = [
    Combo("default", "generic", "redis", "prefork"),
    Combo("postgres", "vendor", "rabbitmq", "prefork"),
    Combo("mysql", "vendor", "redis", "prefork"),
]
RABBITMQ = [
    Combo("postgres", "vendor", "rabbitmq", "prefork"),
    Combo("mysql", "vendor", "rabbitmq", "prefork"),
]
#: Under .ci/run each version leg takes one of these (``shared``): both legs, both servers.
SERVERS = [
    Combo("postgres", "vendor", "redis", "prefork"),
    Combo("mysql", "vendor", "redis", "prefork"),
]
SERVER_PORTS = {"postgres": 5432, "mysql": 3306}


class Cluster:
    """The test's workers and the app that sends to them."""

    def __init__(self, combo: Combo, brokers: Brokers, stack: ExitStack) -> None:
        self.combo = combo
        self.brokers = brokers
        self.stack = stack
        self.tag = uuid.uuid4().hex[:8]
        self.apps: dict[str, Celery] = {}

    def start(self, name: str, queue: str | None = None, **env: str) -> Worker:
        """Start worker ``name`` reading ``queue`` (its own by default); wait for its row."""
        self.brokers.ensure(self.combo.broker)
        worker = Worker(
            self.combo, queue=queue or f"e2e-{self.tag}-{name}", node=f"{name}-{self.tag}",
            extra_env={**FAST, **env},
        )  # fmt: skip
        worker.start()
        self.stack.callback(worker.kill)  # its state is the test's, not a shutdown's
        wait_until(lambda: row_of(worker), what=f"worker {name} to register")
        return worker

    def send(self, worker: Worker, task: str, *args: Any) -> str:
        """Send ``task`` to ``worker``'s queue; return its id."""
        app = self.apps.get(worker.queue)
        if app is None:
            app = self.apps[worker.queue] = client_app(self.combo, worker.queue)
            self.stack.callback(app.close)
        return str(app.send_task(T + task, args=args).id)


def row_of(worker: Worker) -> WorkerRow | None:
    """This worker process's life (a restart under its node name is another row)."""
    pid = worker.process.pid if worker.process else -1
    return WorkerRow.objects.filter(hostname__startswith=f"{worker.node}@", pid=pid).first()


def status(task_id: str) -> str | None:
    return TaskResult.objects.filter(task_id=task_id).values_list("status", flat=True).first()


def started(task_id: str) -> TaskResult | None:
    return TaskResult.objects.filter(task_id=task_id, status=states.STARTED).first()


def settled_count() -> int:
    return Counter.objects.filter(name=SETTLED).values_list("value", flat=True).first() or 0


@contextmanager
def cluster_of(combo: Combo, brokers: Brokers) -> Iterator[Cluster]:
    use_alias(combo.alias)
    try:
        with ExitStack() as stack:
            yield Cluster(combo, brokers, stack)
    finally:
        use_alias(None)


@pytest.fixture
def cluster(combo: Combo, brokers: Brokers, django_db_setup: None) -> Iterator[Cluster]:
    """Workers started by the test, stopped after it."""
    with cluster_of(combo, brokers) as started_cluster:
        yield started_cluster


def combos(which: list[Combo]) -> Any:
    return pytest.mark.parametrize("combo", combo_params(which), indirect=True)


@pytest.mark.django_db(databases="__all__", transaction=True)
@combos(PREFORK)
def test_a_killed_worker_s_task_is_settled_by_another(cluster: Cluster, combo: Combo) -> None:
    """``kill -9`` of a worker and its pool, a second worker alive: only its task settles."""
    lost, alive = cluster.start("lost"), cluster.start("alive")
    doomed = cluster.send(lost, "slow", 60)
    running = cluster.send(alive, "slow", 4)
    wait_until(lambda: started(doomed) and started(running), what="both tasks to start")
    before = settled_count()
    last_beat = row_of(lost).heartbeat_at  # type: ignore[union-attr]
    lost.kill()
    killed_at = time.monotonic()
    wait_until(lambda: status(doomed) == states.FAILURE, what="the lost task to be settled")
    took = time.monotonic() - killed_at
    assert took <= 2 * HEARTBEAT + GRACE + SLACK
    row = TaskResult.objects.get(task_id=doomed)
    assert str(row.exception_type).endswith("WorkerLostError")
    assert f"lost-{cluster.tag}@" in str(row.result)
    assert row.lifeline is None
    # Not before its heartbeats were older than the grace, by the database's clock.
    assert row.date_done - last_beat >= timedelta(seconds=GRACE - HEARTBEAT)
    wait_until(lambda: status(running) == states.SUCCESS, what="the live worker's task")
    assert settled_count() == before + 1


@pytest.mark.django_db(databases="__all__", transaction=True)
@combos(PREFORK)
def test_a_lone_worker_settles_its_own_orphans_when_it_restarts(
    cluster: Cluster, combo: Combo
) -> None:
    """No one else to sweep: the restarted worker settles its earlier life's task at once."""
    slow_grace = {"DEMO_LIFELINE_GRACE": "600"}  # only the restart can settle it in time
    first = cluster.start("lone", **slow_grace)
    doomed = cluster.send(first, "slow", 60)
    wait_until(lambda: started(doomed), what="the task to start")
    first.kill()
    assert status(doomed) == states.STARTED
    again = cluster.start("lone", **slow_grace)
    assert again.node == first.node
    wait_until(lambda: status(doomed) == states.FAILURE, what="the restarted worker to settle")
    assert "was lost" in str(TaskResult.objects.get(task_id=doomed).result)


@pytest.mark.django_db(databases="__all__", transaction=True)
@combos(PREFORK)
def test_a_live_worker_s_long_task_is_never_settled_even_with_its_clock_off(
    cluster: Cluster, combo: Combo
) -> None:
    """A task running for 3x the grace on a worker whose clock is 30 s behind."""
    behind, sweeper = cluster.start("behind", DEMO_CLOCK_SKEW="-30"), cluster.start("sweeper")
    heartbeat = row_of(behind).heartbeat_at  # type: ignore[union-attr]
    database_now = WorkerRow.objects.annotate(now=Now()).values_list("now", flat=True)[0]
    assert abs(database_now - heartbeat) < timedelta(seconds=10)  # the database's clock
    task_id = cluster.send(behind, "slow", 3 * GRACE)
    seen = set()
    deadline = time.monotonic() + 60
    while (state := status(task_id)) != states.SUCCESS and time.monotonic() < deadline:
        seen.add(state)
        time.sleep(0.1)
    assert state == states.SUCCESS
    assert states.FAILURE not in seen
    assert row_of(sweeper) is not None


@pytest.mark.django_db(databases="__all__", transaction=True)
@combos(shared(RABBITMQ))
def test_an_acks_late_task_ends_with_its_redelivered_run(cluster: Cluster, combo: Combo) -> None:
    """RabbitMQ requeues a lost worker's unacknowledged task: the other worker's run wins."""
    queue = f"e2e-{cluster.tag}-shared"
    one, two = cluster.start("one", queue), cluster.start("two", queue)
    task_id = cluster.send(one, "slow_acks_late", 4)
    row = wait_until(lambda: started(task_id), what="the task to start")
    assert str(row.lifeline).endswith(" acks_late")
    runner, other = (one, two) if str(row.worker).startswith(f"{one.node}@") else (two, one)
    runner.kill()
    wait_until(lambda: status(task_id) == states.SUCCESS, what="the redelivered run's SUCCESS")
    assert str(TaskResult.objects.get(task_id=task_id).worker).startswith(f"{other.node}@")


@pytest.mark.django_db(databases="__all__", transaction=True)
@combos(shared(SERVERS))
def test_a_database_outage_declares_no_one_lost(cluster: Cluster, combo: Combo) -> None:
    """Every worker cut off from the database for 4x the grace: no task is settled."""
    proxy = TcpProxy(SERVER_PORTS[combo.alias])
    cluster.stack.callback(proxy.close)
    through = {"DEMO_DATABASE_PORT": str(proxy.port)}
    one, two = cluster.start("one", **through), cluster.start("two", **through)
    task_id = cluster.send(one, "slow", 4 * GRACE + 6)
    wait_until(lambda: started(task_id), what="the task to start")
    before = settled_count()
    proxy.cut()
    time.sleep(4 * GRACE)
    proxy.restore()
    wait_until(lambda: status(task_id) == states.SUCCESS, what="the task's SUCCESS")
    time.sleep(GRACE + 2 * HEARTBEAT)  # the sweeps after the outage
    assert settled_count() == before
    assert row_of(two) is not None


@pytest.mark.django_db(databases="__all__", transaction=True)
@combos([Combo("postgres", "vendor", "redis", "prefork")])
def test_sweeps_that_race_settle_each_task_once(cluster: Cluster, combo: Combo) -> None:
    """Two workers sweep without an election: two lost tasks, two settlements."""
    lost = cluster.start("lost")
    doomed = [cluster.send(lost, "slow", 60) for _ in range(2)]
    wait_until(lambda: all(started(task_id) for task_id in doomed), what="the tasks to start")
    race = {"DEMO_ELECTION_RACE": "1"}
    cluster.start("racer-a", **race)
    cluster.start("racer-b", **race)
    before = settled_count()
    lost.kill()
    wait_until(
        lambda: all(status(task_id) == states.FAILURE for task_id in doomed),
        what="the lost tasks to be settled",
    )
    time.sleep(GRACE)  # more sweeps by both
    assert settled_count() == before + len(doomed)
