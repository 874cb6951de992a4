"""``AsyncResult.exists()`` (Celery 5.7): a stored row in any state, PENDING included.

The tests ask the backend's ``task_result_exists``, which ``exists()`` calls, so they run
on every Celery the package supports; one checks that ``exists()`` asks it.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from celery import states
from celery.result import AsyncResult
from django.db import connections
from django.test.utils import CaptureQueriesContext

from ... import pending
from ...models import TaskResult
from .helpers import new_id, row

#: What a driver's ``from django_celery_results.testing.suite import *`` takes.
__all__ = ["TestExists"]


class TestExists:
    """``backend.task_result_exists`` and the driver's ``task_result_exists``."""

    @pytest.mark.skipif(not hasattr(AsyncResult, "exists"), reason="Celery < 5.7")
    def test_async_result_exists_asks_the_backend(self, backend: Any, result_app: Any) -> None:
        task_id = new_id()
        assert result_app.AsyncResult(task_id).exists() is False
        backend.store_result(task_id, None, states.PENDING)
        assert result_app.AsyncResult(task_id).exists() is True

    def test_unknown_id_does_not_exist(self, backend: Any) -> None:
        assert backend.task_result_exists(new_id()) is False

    def test_every_stored_state_exists(self, backend: Any) -> None:
        for state in (states.PENDING, states.STARTED, "PROGRESS", states.SUCCESS):
            task_id = new_id()
            backend.store_result(task_id, None, state)
            assert backend.task_result_exists(task_id) is True, state

    def test_sent_task_exists_before_a_worker_runs_it(self, sender: Any) -> None:
        """With TRACK_PENDING the sender sees its task at once (its PENDING row is flushed)."""
        result = sender.send_task("tests.add", args=(1, 2))
        assert result.state == states.PENDING
        assert sender.backend.task_result_exists(result.id) is True

    def test_ignored_result_does_not_exist(self, sender: Any) -> None:
        result = sender.send_task("tests.add", ignore_result=True)
        assert pending.flush(10)
        assert sender.backend.task_result_exists(result.id) is False

    def test_forgotten_and_cleaned_up_do_not_exist(self, backend: Any, result_app: Any) -> None:
        forgotten, expired = new_id(), new_id()
        backend.store_result(forgotten, 1, states.SUCCESS)
        backend.store_result(expired, 1, states.SUCCESS)
        result_app.AsyncResult(forgotten).forget()
        TaskResult.objects.filter(task_id=expired).update(date_done="2000-01-01T00:00:00Z")
        backend.cleanup()
        assert backend.task_result_exists(forgotten) is False
        assert backend.task_result_exists(expired) is False

    def test_one_query_that_reads_no_column(self, driver: Any, db_alias: str) -> None:
        task_id = new_id()
        driver.ops.store_task_results([row(task_id, states.SUCCESS, result='"x" ' * 1000)])
        with CaptureQueriesContext(connections[db_alias]) as queries:
            assert driver.ops.task_result_exists(task_id) is True
            assert driver.ops.task_result_exists(new_id()) is False
        assert len(queries.captured_queries) == 2
        for query in queries.captured_queries:
            selected = query["sql"].upper().split(" FROM ")[0]
            assert not {"RESULT", "META"} & set(re.findall(r"\w+", selected)), query["sql"]
