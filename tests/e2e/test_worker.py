"""What a real worker stores: every outcome, groups, chords, cleanup, kills and a burst."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import pytest
from celery import chord, group, states
from celery.exceptions import ChordError
from django.utils import timezone

from django_celery_results.drivers import driver_for_model
from django_celery_results.models import TaskResult
from django_celery_results.testing.suite.helpers import new_id, row

from .conftest import (
    BATCHED,
    FULL,
    SMOKE,
    TIMEOUT,
    Combo,
    Worker,
    client_app,
    combo_params,
    shared,
    wait_until,
)

T = "demo_app.tasks."

#: Every scenario runs on FULL and, with batched writes, on BATCHED; the smoke set on SMOKE.
every = pytest.mark.parametrize(
    "combo", combo_params(FULL + shared(BATCHED) + shared(SMOKE)), indirect=True, scope="module"
)
full = pytest.mark.parametrize(
    "combo", combo_params(FULL + shared(BATCHED)), indirect=True, scope="module"
)


def stored(task_id: str) -> TaskResult:
    return TaskResult.objects.get(task_id=task_id)


def final(task_id: str) -> TaskResult:
    """Wait until the worker stored a finished state for ``task_id``; return the row."""
    return wait_until(  # type: ignore[no-any-return]
        lambda: TaskResult.objects.filter(
            task_id=task_id, status__in=sorted(states.READY_STATES)
        ).first(),
        what=f"task {task_id} to finish",
    )


@every
def test_success_with_extended_fields_and_timeline(app: Any, worker: Worker) -> None:
    result = app.send_task(T + "add", args=(2, 3), kwargs={})
    assert result.get(timeout=TIMEOUT) == 5
    row_ = stored(result.id)
    assert (row_.status, row_.task_name, row_.task_args, row_.task_kwargs) == (
        states.SUCCESS,
        T + "add",
        '"(2, 3)"',
        '"{}"',
    )
    assert row_.worker is not None
    assert row_.worker.startswith(worker.queue)
    # task_track_started: STARTED was written with its time, then SUCCESS.
    assert row_.date_started is not None
    assert row_.date_created <= row_.date_started <= row_.date_done


@full
def test_progress_states_and_batching(app: Any, combo: Combo) -> None:
    result = app.send_task(T + "report_progress", args=(50,))
    assert result.get(timeout=TIMEOUT) == {"steps": 50, "batched": combo.batched}
    row_ = stored(result.id)
    assert row_.status == states.SUCCESS
    assert row_.date_started is not None
    assert row_.date_created <= row_.date_started <= row_.date_done


@every
def test_failure_keeps_the_traceback(app: Any) -> None:
    result = app.send_task(T + "fail", args=("boom",))
    with pytest.raises(ValueError, match="boom"):
        result.get(timeout=TIMEOUT)
    row_ = stored(result.id)
    assert row_.status == states.FAILURE
    assert row_.traceback is not None
    assert "ValueError: boom" in row_.traceback


@every
def test_group_joined_with_get(app: Any) -> None:
    result = group(app.signature(T + "add", args=(i, i)) for i in range(20)).apply_async()
    assert result.get(timeout=TIMEOUT) == [2 * i for i in range(20)]


@full
def test_retry_then_success(app: Any) -> None:
    result = app.send_task(T + "flaky", args=(7,))
    assert result.get(timeout=TIMEOUT) == 7
    assert stored(result.id).status == states.SUCCESS


@full
def test_revoke(app: Any) -> None:
    result = app.send_task(T + "slow", args=(30,), countdown=5)
    result.revoke()
    wait_until(
        lambda: TaskResult.objects.filter(task_id=result.id, status=states.REVOKED).exists(),
        what="the revoked state",
    )
    assert result.state == states.REVOKED


@full
def test_periodic_task_name_from_beat_header(app: Any) -> None:
    result = app.send_task(T + "add", args=(1, 1), headers={"periodic_task_name": "nightly"})
    result.get(timeout=TIMEOUT)
    assert stored(result.id).periodic_task_name == "nightly"


@full
def test_meta_injection(app: Any) -> None:
    result = app.send_task(T + "inject_meta", args=("here",))
    assert result.get(timeout=TIMEOUT) == "here"
    meta = json.loads(stored(result.id).meta or "{}")
    assert meta["injected"] == "here"
    assert "children" in meta


@full
def test_chord_of_200_fires_once(app: Any) -> None:
    header = [app.signature(T + "add", args=(i, 1)) for i in range(200)]
    result = chord(header)(app.signature(T + "tsum"))
    assert result.get(timeout=TIMEOUT) == sum(i + 1 for i in range(200))
    callbacks = TaskResult.objects.filter(task_name=T + "tsum", task_id=result.id)
    assert callbacks.count() == 1
    assert callbacks.get().status == states.SUCCESS


@full
def test_failing_header_gives_the_callback_a_chord_error(app: Any) -> None:
    header = [app.signature(T + "add", args=(1, 1)), app.signature(T + "fail", args=("x",))]
    result = chord(header)(app.signature(T + "tsum"))
    # follow_parents=False: else get() may raise the header's own ValueError first, when
    # a poll finds it failed before the callback's ChordError is stored (Celery's rule).
    with pytest.raises(ChordError):
        result.get(timeout=TIMEOUT, propagate=True, follow_parents=False)
    assert stored(result.id).status == states.FAILURE


@full
def test_backend_cleanup_deletes_expired_results(app: Any) -> None:
    old, fresh = new_id(), new_id()
    driver = driver_for_model(TaskResult)
    long_ago = timezone.now() - timedelta(days=3)
    driver.ops.store_task_results([row(old, states.SUCCESS, date_done=long_ago)])
    driver.ops.store_task_results([row(fresh, states.SUCCESS)])
    app.send_task("celery.backend_cleanup").get(timeout=TIMEOUT)
    wait_until(lambda: not TaskResult.objects.filter(task_id=old).exists(), what="the cleanup")
    assert TaskResult.objects.filter(task_id=fresh).exists()


@full
def test_waiting_and_processing_time(app: Any) -> None:
    """Tasks held in the queue while both pool slots are busy show the real wait."""
    busy = [app.send_task(T + "slow", args=(2.0,)) for _ in range(2)]
    time.sleep(0.3)  # let both start
    sent = time.monotonic()
    held = app.send_task(T + "slow", args=(0.5,))
    waited = None
    held.get(timeout=TIMEOUT)
    for result in busy:
        result.get(timeout=TIMEOUT)
    waited_until_start = stored(held.id)
    waited = waited_until_start.waiting_time
    processing = waited_until_start.processing_time
    assert waited is not None
    assert processing is not None
    # It sat behind the 2 s tasks (started ~0.3 s before it was sent), within broker latency.
    assert timedelta(seconds=1.2) <= waited <= timedelta(seconds=4)
    assert timedelta(seconds=0.5) <= processing <= timedelta(seconds=1.5)
    assert time.monotonic() - sent >= 1.2


@full
def test_a_thousand_tasks_sent_at_once(app: Any) -> None:
    results = [app.send_task(T + "add", args=(i, 0)) for i in range(1000)]
    ids = [r.id for r in results]
    wait_until(
        lambda: TaskResult.objects.filter(task_id__in=ids, status=states.SUCCESS).count() == 1000,
        timeout=180,
        what="1,000 tasks to succeed",
    )
    assert TaskResult.objects.filter(task_id__in=ids).count() == 1000


@pytest.mark.parametrize(
    "combo",
    combo_params([c for c in FULL if c.broker == "rabbitmq"]),
    indirect=True,
    scope="module",
)
def test_killed_worker_redelivers_under_acks_late(combo: Combo, worker: Worker) -> None:
    """SIGKILL the whole worker mid-task: the broker redelivers, the row ends SUCCESS."""
    from django_celery_results.testing.router import use_alias

    killed = Worker(combo, queue=f"{worker.queue}-kill")
    killed.start()
    app = client_app(combo, killed.queue)
    use_alias(combo.alias)
    try:
        result = app.send_task(T + "slow_acks_late", args=(3.0,))
        wait_until(
            lambda: TaskResult.objects.filter(task_id=result.id, status=states.STARTED).exists(),
            what="the task to start",
        )
        killed.kill()
        assert stored(result.id).status == states.STARTED
        killed.start()  # a new worker on the same queue gets the message again
        assert result.get(timeout=TIMEOUT) == 3.0
        done = stored(result.id)
        assert done.status == states.SUCCESS
        assert done.date_started is not None
    finally:
        killed.stop()
        use_alias(None)
        app.close()
