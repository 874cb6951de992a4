"""``NOTIFY``: clients wait on PostgreSQL notifications from a real worker, not on polls."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from celery import group, states
from celery.exceptions import TimeoutError as CeleryTimeoutError
from celery.result import AsyncResult
from django.db import connections
from django.test import AsyncClient
from django.test.utils import CaptureQueriesContext

from django_celery_results import aio
from django_celery_results.backends import hub as notify
from django_celery_results.models import TaskResult
from tests import aio_views

from .conftest import (
    BROKERS,
    TIMEOUT,
    Brokers,
    Combo,
    Worker,
    combo_params,
    running_worker,
    sender_app,
)

T = "demo_app.tasks."
NOTIFYING = Combo("postgres", "vendor", "redis", "prefork")
pytestmark = pytest.mark.parametrize(
    "combo", combo_params([NOTIFYING]), indirect=True, scope="module"
)
ON = {"NOTIFY": True, "TRACK_PENDING": True}


@pytest.fixture(scope="module")
def worker(
    combo: Combo, brokers: Brokers, django_db_setup: None, django_db_blocker: Any
) -> Iterator[Worker]:
    """A worker whose writes of finished tasks notify (``DEMO_NOTIFY``)."""
    try:
        with running_worker(combo, brokers, django_db_blocker, {"DEMO_NOTIFY": "1"}) as started:
            yield started
    finally:
        notify.close_hubs()  # the listening connection, before the database is dropped


@pytest.fixture
def app(worker: Worker, combo: Combo) -> Iterator[Any]:
    """The sender's app with ``NOTIFY`` on, current for the test."""
    with sender_app(worker, combo, ON) as sender:
        yield sender


def reads(alias: str) -> CaptureQueriesContext:
    return CaptureQueriesContext(connections[alias])


def task_reads(queries: CaptureQueriesContext) -> int:
    """How many times the task table was read (polls read it; notices read it once)."""
    return sum(
        1
        for query in queries.captured_queries
        if query["sql"].lstrip().upper().startswith("SELECT") and "taskresult" in query["sql"]
    )


def listener_pids(alias: str) -> list[int]:
    with connections[alias].cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity "
            "WHERE application_name = 'django_celery_results listener'"
        )
        return [pid for (pid,) in cursor.fetchall()]


def test_get_wakes_on_the_notification_not_by_polling(
    app: Any, combo: Combo, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No safety poll within the test: only a notice can end the wait in time.
    monkeypatch.setattr(notify, "SAFETY_POLL_SECONDS", 3600.0)
    assert app.backend.is_async
    result = app.send_task(T + "slow", args=(1.5,))
    with reads(combo.alias) as queries:
        # Polling every 20 ms would read the row about 75 times in 1.5 s.
        assert result.get(timeout=TIMEOUT, interval=0.02) == 1.5
    assert 1 <= task_reads(queries) <= 2  # once after subscribing, once on the notice


def test_a_result_stored_before_the_wait_is_read_at_once(app: Any, combo: Combo) -> None:
    result = app.send_task(T + "add", args=(20, 22))
    deadline = time.monotonic() + TIMEOUT
    while not TaskResult.objects.filter(task_id=result.id, status=states.SUCCESS).exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    fresh = AsyncResult(result.id, app=app)  # never subscribed before the row was stored
    assert fresh.get(timeout=TIMEOUT) == 42


def test_a_killed_listener_reconnects_and_loses_nothing(app: Any, combo: Combo) -> None:
    result = app.send_task(T + "slow", args=(2.0,))
    got: list[Any] = []

    def wait() -> None:
        try:
            got.append(result.get(timeout=TIMEOUT))
        finally:
            connections.close_all()

    waiter = threading.Thread(target=wait)
    waiter.start()
    try:
        deadline = time.monotonic() + TIMEOUT
        while not listener_pids(combo.alias):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        with connections[combo.alias].cursor() as cursor:
            for pid in listener_pids(combo.alias):
                cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    finally:
        waiter.join(TIMEOUT)
    assert got == [2.0]


def test_a_lost_notification_is_caught_by_the_safety_poll(app: Any, combo: Combo) -> None:
    task_id = str(uuid.uuid4())
    result = AsyncResult(task_id, app=app)

    def finish_without_notice() -> None:
        # As a process with NOTIFY off would: the row, and no notice.
        try:
            TaskResult.objects.create(
                task_id=task_id,
                status=states.SUCCESS,
                result="7",
                content_type="application/json",
                content_encoding="utf-8",
            )
        finally:
            connections.close_all()

    timer = threading.Timer(0.5, finish_without_notice)
    timer.start()
    try:
        assert result.get(timeout=notify.SAFETY_POLL_SECONDS * 5) == 7
    finally:
        timer.join()


def test_timeout_and_propagate_false(app: Any) -> None:
    slow = app.send_task(T + "slow", args=(5.0,))
    with pytest.raises(CeleryTimeoutError):
        slow.get(timeout=0.3)
    failed = app.send_task(T + "fail", args=("boom",))
    error = failed.get(timeout=TIMEOUT, propagate=False)
    assert isinstance(error, Exception)
    assert "boom" in str(error)
    assert failed.status == states.FAILURE


def test_threads_wait_side_by_side(app: Any) -> None:
    results = [app.send_task(T + "add", args=(i, i)) for i in range(8)]
    got: dict[int, Any] = {}

    def wait(index: int) -> None:
        try:
            got[index] = results[index].get(timeout=TIMEOUT)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=wait, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    assert got == {i: 2 * i for i in range(8)}


def test_a_group_of_1000_joins(app: Any) -> None:
    job = group(app.signature(T + "add", args=(i, 1)) for i in range(1000))
    result = job.apply_async()
    assert result.join_native(timeout=TIMEOUT) == [i + 1 for i in range(1000)]


def test_an_async_view_awaits_the_result(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aio_views, "app", app)
    result = app.send_task(T + "slow", args=(0.5,))
    client = AsyncClient()
    response = async_to_sync(client.get)(f"/aio/{result.id}/", {"timeout": str(TIMEOUT)})
    assert response.json() == {"result": 0.5}
    assert response.status_code == 200


def test_aio_timeout_propagate_and_groups(app: Any) -> None:
    slow = app.send_task(T + "slow", args=(5.0,))
    with pytest.raises(CeleryTimeoutError):
        async_to_sync(aio.wait)(slow, timeout=0.3)
    failed = app.send_task(T + "fail", args=("boom",))
    with pytest.raises(ValueError, match="boom"):
        async_to_sync(aio.wait)(failed, timeout=TIMEOUT)
    error = async_to_sync(aio.wait)(failed, timeout=TIMEOUT, propagate=False)
    assert isinstance(error, ValueError)
    job = group(app.signature(T + "add", args=(i, i)) for i in range(20)).apply_async()
    assert async_to_sync(aio.wait_group)(job, timeout=TIMEOUT) == [2 * i for i in range(20)]


def run_client(mode: str, combo: Combo, worker: Worker) -> Any:
    """Run ``notify_client.py`` in ``mode`` against this module's worker; return its JSON."""
    env = {
        **os.environ,
        "NOTIFY_CLIENT_DATABASE": connections[combo.alias].settings_dict["NAME"],
        "NOTIFY_CLIENT_BROKER": BROKERS[combo.broker],
        "NOTIFY_CLIENT_QUEUE": worker.queue,
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    completed = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("notify_client.py")), mode],
        env=env, capture_output=True, text=True, timeout=TIMEOUT * 2, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_greenlets_wait_on_notifications(combo: Combo, worker: Worker) -> None:
    seen = run_client("gevent", combo, worker)
    assert seen["results"] == [2 * i for i in range(6)]
    assert seen["async"] is True
    assert seen["hub_thread"].startswith("gevent")  # monkey-patched: a greenlet


def test_a_forked_child_listens_on_its_own(combo: Combo, worker: Worker) -> None:
    seen = run_client("fork", combo, worker)
    assert seen["before"] == 2
    assert seen["child"] == {"child": 4, "new_hub": True, "kept": 1}
    assert seen["child_status"] == 0
    assert seen["after"] == 6
    assert seen["same_hub"] is True
