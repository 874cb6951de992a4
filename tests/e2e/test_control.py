"""Several real workers on one queue: revoke broadcasts, the admin's terminate, ignored results.

Celery's ``revoke`` reaches every worker, and each one that sees the task PENDING, RECEIVED
or RETRY stores REVOKED without the task's request: three workers make three writes.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from celery import chord, states
from django.contrib import admin
from django.contrib.messages.storage.fallback import FallbackStorage
from django.contrib.sessions.backends.signed_cookies import SessionStore
from django.db import connections
from django.db.models import Count
from django.test import RequestFactory
from django.utils import timezone

import demo_app.tasks  # noqa: F401  (the sender knows the definitions: ignore_result)
from django_celery_results import pending
from django_celery_results.admin import TaskResultAdmin
from django_celery_results.history.rollup import catch_up
from django_celery_results.history.windows import series_counts, window
from django_celery_results.models import ChordCounter, TaskResult

from .conftest import (
    TIMEOUT,
    Brokers,
    Combo,
    Worker,
    client_app,
    combo_params,
    own_pools,
    wait_until,
)

T = "demo_app.tasks."
WORKERS = 3
COMBOS = [
    Combo("default", "generic", "redis", "prefork"),
    Combo("postgres", "vendor", "rabbitmq", "prefork"),
    Combo("mysql", "vendor", "redis", "prefork"),
]
pytestmark = pytest.mark.parametrize("combo", combo_params(COMBOS), indirect=True, scope="module")


@dataclass
class Workers:
    """This module's workers and their node names (broadcasts go to these only)."""

    started: list[Worker]
    nodes: list[str]


@pytest.fixture(scope="module")
def workers(
    combo: Combo, brokers: Brokers, django_db_setup: None, django_db_blocker: Any
) -> Iterator[Workers]:
    """WORKERS workers reading one queue, each under a node name of its own."""
    brokers.ensure(combo.broker)
    queue = f"e2e-{uuid.uuid4().hex[:10]}"
    # On SQLite, history catch-ups every 0.2 s: a pool process replaced after a terminate is
    # then often forked during one (it used to inherit SQLite's locks held, and hang).
    fast_history = {"DEMO_HISTORY_INTERVAL": "0.2"} if combo.alias == "default" else None
    started = [
        Worker(combo, queue=queue, node=f"{queue}-{n}", extra_env=fast_history)
        for n in range(WORKERS)
    ]
    for worker in started:
        worker.start()
    app = client_app(combo, queue)
    try:
        nodes = wait_until(lambda: ours(ping(app), queue),
                           what=f"{WORKERS} workers to answer a ping")  # fmt: skip
        yield Workers(started, nodes)
    finally:
        for worker in started:
            worker.stop()
        app.close()


@pytest.fixture(scope="module")
def worker(workers: Workers) -> Worker:
    """The first worker: the ``app`` fixture sends to its queue, which all of them read."""
    return workers.started[0]


def ping(app: Any) -> list[dict[str, Any]] | None:
    """The workers' answers to a ping; none when the broker connection dropped.

    The app's pools are then replaced, so the next ping opens a new connection.
    """
    try:
        return app.control.ping(timeout=1)  # type: ignore[no-any-return]
    except (ConnectionError, OSError):
        own_pools(app)
        return None


def ours(replies: list[dict[str, Any]] | None, queue: str) -> list[str] | None:
    """Return the node names of this module's workers among ``replies``, once all answered.

    Workers of another run on the same broker (other queues) also answer broadcasts.
    """
    nodes = sorted(node for reply in replies or [] for node in reply if node.startswith(queue))
    return nodes if len(nodes) == WORKERS else None


def revoke_everywhere(app: Any, workers: Workers, task_id: str) -> None:
    """Send ``revoke`` to every worker and wait until each has handled it."""
    replies = app.control.revoke(
        task_id, destination=workers.nodes, reply=True, timeout=10, limit=WORKERS
    )
    assert len(replies) == WORKERS, replies


def wait_until_idle(app: Any, workers: Workers) -> None:
    """Wait until no worker runs a task: what they ran has been stored (or not) by then.

    Broadcasts are handled in order, so this also follows any sent before it.
    """

    def idle() -> bool:
        active = app.control.inspect(destination=workers.nodes, timeout=2).active() or {}
        return len(active) == WORKERS and not any(active.values())

    wait_until(idle, what="the workers to finish their tasks")


def terminate_from_the_admin(*task_ids: str) -> None:
    """Run the admin's "Terminate selected tasks" action on the rows of ``task_ids``."""
    request = RequestFactory().post("/admin/django_celery_results/taskresult/")
    request.session = SessionStore()
    request._messages = FallbackStorage(request)  # type: ignore[attr-defined]
    model_admin = TaskResultAdmin(model=TaskResult, admin_site=admin.site)
    model_admin.terminate_task(request, TaskResult.objects.filter(task_id__in=task_ids))


def waiting_to_retry(app: Any) -> TaskResult:
    """Send a task that retries in a minute; return its RETRY row, written by a worker."""
    result = app.send_task(T + "retry_later", args=(60,))
    return wait_until(  # type: ignore[no-any-return]
        lambda: TaskResult.objects.filter(task_id=result.id, status=states.RETRY).first(),
        what="the RETRY state",
    )


def columns(row: TaskResult) -> list[Any]:
    return [getattr(row, field.attname) for field in TaskResult._meta.concrete_fields]


def test_every_worker_revokes_and_the_row_keeps_its_request(
    app: Any, workers: Workers, worker: Worker
) -> None:
    retrying = waiting_to_retry(app)
    revoke_everywhere(app, workers, retrying.task_id)
    [stored] = TaskResult.objects.filter(task_id=retrying.task_id)
    assert stored.status == states.REVOKED
    assert (stored.task_name, stored.task_args, stored.worker) == (
        retrying.task_name,
        '"(60,)"',
        retrying.worker,
    )
    assert stored.worker is not None
    assert stored.worker.startswith(worker.queue)
    assert app.AsyncResult(stored.task_id).state == states.REVOKED


@pytest.mark.parametrize("task", ["add", "fail"])
def test_a_revoke_after_the_outcome_changes_nothing(app: Any, workers: Workers, task: str) -> None:
    result = app.send_task(T + task, args=(1, 2) if task == "add" else ("boom",))
    result.get(timeout=TIMEOUT, propagate=False)
    # The sender's PENDING row may land after the outcome (it only moves date_created
    # earlier, to the send time): let it land before taking the snapshot.
    assert pending.flush()
    before = columns(TaskResult.objects.get(task_id=result.id))
    revoke_everywhere(app, workers, result.id)
    terminate_from_the_admin(result.id)
    wait_until_idle(app, workers)  # the terminate broadcast was handled before this one
    assert columns(TaskResult.objects.get(task_id=result.id)) == before


def test_the_admins_terminate_revokes_a_waiting_task(app: Any) -> None:
    retrying = waiting_to_retry(app)
    terminate_from_the_admin(retrying.task_id)
    stored = wait_until(
        lambda: TaskResult.objects.filter(task_id=retrying.task_id, status=states.REVOKED).first(),
        what="the terminated task's REVOKED state",
    )
    assert (stored.task_name, stored.task_args, stored.worker) == (
        retrying.task_name,
        retrying.task_args,
        retrying.worker,
    )


def test_the_admins_terminate_stops_a_running_task(app: Any) -> None:
    result = app.send_task(T + "slow", args=(60,))
    wait_until(
        lambda: TaskResult.objects.filter(task_id=result.id, status=states.STARTED).exists(),
        what="the slow task to start",
    )
    started = time.monotonic()
    terminate_from_the_admin(result.id)
    stored = wait_until(
        lambda: TaskResult.objects.filter(task_id=result.id, status=states.REVOKED).first(),
        what="the running task's REVOKED state",
    )
    assert time.monotonic() - started < 60  # killed, not finished
    assert stored.worker is not None
    assert stored.task_name == T + "slow"


def sentinel(app: Any) -> Any:
    """A task linked after an ignored one: when it is done, the ignored one finished."""
    task_id = str(uuid.uuid4())
    return app.signature(T + "add", args=(0, 0), immutable=True, options={"task_id": task_id})


@pytest.mark.parametrize("how", ["apply_async", "definition"])
def test_an_ignored_result_is_never_stored(app: Any, workers: Workers, how: str) -> None:
    after = sentinel(app)
    if how == "apply_async":
        result = app.send_task(T + "add", args=(1, 1), ignore_result=True, link=after)
    else:
        result = app.send_task(T + "fire_and_forget", args=(1,), link=after)
    # The link is sent before the task's own result would be written: wait for both.
    app.AsyncResult(after.options["task_id"]).get(timeout=TIMEOUT)
    wait_until_idle(app, workers)
    assert not TaskResult.objects.filter(task_id=result.id).exists()
    assert result.exists() is False


def test_a_chord_whose_header_ignores_results_leaves_no_counter(
    app: Any, workers: Workers
) -> None:
    # The header waits a few seconds, so its counter is seen before the parts count it down.
    header = [app.signature(T + "fire_and_forget", args=(i,), countdown=3) for i in range(3)]
    result = chord(header)(app.signature(T + "tsum"))
    group_id = result.parent.id
    assert ChordCounter.objects.filter(group_id=group_id, count=3).exists()
    wait_until(
        lambda: not ChordCounter.objects.filter(group_id=group_id).exists(),
        what="the chord's counter to be removed",
    )
    wait_until_idle(app, workers)
    assert not TaskResult.objects.filter(task_id=result.id).exists()  # the callback never ran


def finished_by_series(since: Any) -> Counter[tuple[str, ...]]:
    """``COUNT(*)`` of finished rows done since ``since``, by the history's series."""
    rows = (
        TaskResult.objects.filter(status__in=sorted(states.READY_STATES), date_done__gte=since)
        .values_list("task_name", "status", "queue", "worker", "exception_type")
        .annotate(n=Count("id"))
        .order_by()
    )
    return Counter({tuple(v or "" for v in key): n for *key, n in rows})


def history_by_series(since: Any, alias: str) -> Counter[tuple[str, ...]]:
    """The history's counts of the window from ``since`` (whole minutes) to now."""
    now = timezone.now()
    counted = series_counts(window(since, now, now), alias)
    return Counter({tuple(entry.key): entry.count for entry in counted})


def kill_other_connections(alias: str) -> int:
    """Close every other session on the test database: the workers' next writes retry."""
    with connections[alias].cursor() as cursor:
        if connections[alias].vendor == "postgresql":
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return int(cursor.fetchone()[0])
        cursor.execute(
            "SELECT id FROM information_schema.processlist "
            "WHERE db = DATABASE() AND id <> CONNECTION_ID()"
        )
        ids = [row[0] for row in cursor.fetchall()]
        for session in ids:
            with contextlib.suppress(Exception):  # gone already
                cursor.execute(f"KILL CONNECTION {int(session)}")
        return len(ids)


def test_the_history_equals_the_rows_after_a_real_run(
    app: Any, workers: Workers, combo: Combo
) -> None:
    """Retries, revokes from every worker, duplicate and moved outcomes, killed connections.

    Compared as changes over the run, so rows of the module's earlier tests (some deleted)
    do not blur it: ``COUNT(*)`` of the window's rows grew as the history did.
    """
    wait_until_idle(app, workers)
    since = timezone.now() - timedelta(minutes=1)
    catch_up(wait=True)
    alias = combo.alias
    rows_before, history_before = finished_by_series(since), history_by_series(since, alias)
    sent = [app.send_task(T + "add", args=(n, n)) for n in range(20)]
    sent += [app.send_task(T + "fail", args=("boom",)) for _ in range(4)]
    sent += [app.send_task(T + "flaky", args=(n,)) for n in range(3)]  # RETRY, then SUCCESS
    running = [app.send_task(T + "slow", args=(3,)) for _ in range(3)]
    revoked = app.send_task(T + "slow", args=(30,), countdown=5)
    revoke_everywhere(app, workers, revoked.id)  # three workers, three REVOKED writes
    if connections[alias].vendor != "sqlite":
        # One running is enough to kill connections under: all three at once is not
        # promised (prefetch can queue two behind each other on one worker's two slots).
        wait_until(
            lambda: TaskResult.objects.filter(
                task_id__in=[r.id for r in running], status=states.STARTED
            ).exists(),
            what="a slow task to start",
        )
        assert kill_other_connections(alias) >= 1
    for result in [*sent, *running]:
        result.get(timeout=TIMEOUT, propagate=False)
    wait_until_idle(app, workers)
    backend = app.backend
    # A duplicate SUCCESS (refused), a FAILURE that later succeeds, a revoked task that
    # fails after all: the last two move between states (and minutes).
    backend.mark_as_done(sent[0].id, 99)
    backend.mark_as_done(sent[20].id, "recovered")
    backend.mark_as_failure(revoked.id, KeyError("late"))
    assert pending.flush()
    catch_up(wait=True)
    rows_after, history_after = finished_by_series(since), history_by_series(since, alias)
    grown_rows = rows_after - rows_before
    assert history_after - history_before == grown_rows
    assert sum(grown_rows.values()) == len(sent) + len(running) + 1
    assert TaskResult.objects.get(task_id=revoked.id).exception_type == "KeyError"
