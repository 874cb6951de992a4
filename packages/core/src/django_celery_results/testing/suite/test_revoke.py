"""Revoke broadcasts: every worker may store REVOKED, without the task's request.

Celery's ``revoke`` control command makes each worker that receives it call
``mark_as_revoked(task_id)`` with ``request=None`` for a task that looks PENDING,
RECEIVED or RETRY to it; N workers make N writes, racing the task's own.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from celery import states
from django.db import connections

from ...models import TaskResult
from .helpers import new_id, request

#: What a driver's ``from django_celery_results.testing.suite import *`` takes.
__all__ = ["TestRevokeBroadcast"]

WORKERS = 4


def revoke_from_every_worker(backend: Any, task_id: str, also: Any = None) -> None:
    """Store REVOKED from WORKERS threads at once, as N workers' revoke handlers do.

    ``also`` runs in one more thread at the same moment: the task's own write.
    """
    writes = [lambda: backend.mark_as_revoked(task_id, reason="revoked")] * WORKERS
    if also is not None:
        writes.append(also)
    errors: list[BaseException] = []
    start = threading.Barrier(len(writes))

    def run(write: Any) -> None:
        try:
            start.wait(timeout=30)
            write()
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(write,)) for write in writes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors


@pytest.mark.requires_feature("supports_concurrent_processes")
class TestRevokeBroadcast:
    """Duplicate REVOKED writes without a request, and revokes that arrive too late."""

    def test_duplicate_revokes_keep_what_was_written_before(self, backend: Any) -> None:
        task_id = new_id()
        backend.mark_as_retry(task_id, ValueError("again"), request=request(task_id))
        revoke_from_every_worker(backend, task_id)
        [stored] = TaskResult.objects.filter(task_id=task_id)
        assert stored.status == states.REVOKED
        assert (stored.task_name, stored.task_args, stored.task_kwargs, stored.worker) == (
            "tests.add",
            '"(1, 2)"',
            "\"{'z': 3}\"",
            "celery@conformance",
        )
        meta = backend.get_task_meta(task_id, cache=False)
        assert meta["status"] == states.REVOKED
        assert "revoked" in str(meta["result"])

    @pytest.mark.parametrize("outcome", [states.SUCCESS, states.FAILURE])
    def test_revoke_after_the_outcome_changes_nothing(self, backend: Any, outcome: str) -> None:
        task_id = new_id()
        req = request(task_id)
        if outcome == states.SUCCESS:
            backend.mark_as_done(task_id, 42, request=req)
        else:
            backend.mark_as_failure(task_id, KeyError("x"), traceback="tb", request=req)
        before = TaskResult.objects.get(task_id=task_id)
        revoke_from_every_worker(backend, task_id)
        after = TaskResult.objects.get(task_id=task_id)
        columns = [field.attname for field in TaskResult._meta.concrete_fields]
        assert [getattr(after, c) for c in columns] == [getattr(before, c) for c in columns]

    @pytest.mark.parametrize("outcome", [states.SUCCESS, states.FAILURE])
    def test_the_tasks_outcome_wins_the_race(self, backend: Any, outcome: str) -> None:
        """Revokes and the task's own result written at the same moment: the result stays."""
        task_id = new_id()
        req = request(task_id)
        backend.store_result(task_id, None, states.STARTED, request=req)

        def finish() -> None:
            if outcome == states.SUCCESS:
                backend.mark_as_done(task_id, 42, request=req)
            else:
                backend.mark_as_failure(task_id, KeyError("x"), traceback="tb", request=req)

        revoke_from_every_worker(backend, task_id, also=finish)
        stored = TaskResult.objects.get(task_id=task_id)
        assert (stored.status, stored.worker) == (outcome, "celery@conformance")
        assert stored.traceback == (None if outcome == states.SUCCESS else "tb")
