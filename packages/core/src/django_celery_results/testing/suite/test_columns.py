"""Stored columns: a driver's own SQL writes what the ORM would, and keeps what it must.

Also the statement counts a driver's features promise (one statement per row, or per
batch).
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime
from typing import Any
from unittest import mock

import pytest
from celery import states
from django.db import connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from ...drivers import GenericDriver
from ...models import TaskResult
from .helpers import column_length, new_id, request, row

#: What a driver's ``from django_celery_results.testing.suite import *`` takes.
__all__ = ["TestColumns", "TestNamesAndRequests"]


def later() -> datetime:
    """Return a timestamp strictly after the previous one."""
    time.sleep(0.001)
    return timezone.now()


class TestColumns:
    """Column values through ``store_task_results``, compared with the generic driver."""

    def test_a_batch_is_one_statement_where_promised(self, driver: Any, db_alias: str) -> None:
        ids = [new_id() for _ in range(100)]
        with CaptureQueriesContext(connections[db_alias]) as queries:
            driver.ops.store_task_results([row(i, states.STARTED) for i in ids])
        if driver.features.supports_multi_row_upsert:
            assert len(queries.captured_queries) == 1
        assert TaskResult.objects.filter(task_id__in=ids, status=states.STARTED).count() == 100

    def test_a_batch_of_stored_and_new_ids(self, driver: Any) -> None:
        """In one batch, stored ids follow the precedence rule and new ids are inserted."""
        done, running, fresh = new_id(), new_id(), new_id()
        driver.ops.store_task_results([row(done, states.SUCCESS, worker="w1")])
        started = row(running, states.STARTED, date_started=later())
        driver.ops.store_task_results([started])
        driver.ops.store_task_results(
            [
                row(done, states.STARTED, worker="w2", date_started=later()),
                row(running, states.SUCCESS, worker="w2"),
                row(fresh, states.SUCCESS, worker="w2"),
            ]
        )
        stored = {
            r.task_id: r for r in TaskResult.objects.filter(task_id__in=[done, running, fresh])
        }
        assert (stored[done].status, stored[done].worker) == (states.SUCCESS, "w1")
        assert stored[done].date_started is None
        assert (stored[running].status, stored[running].worker) == (states.SUCCESS, "w2")
        assert stored[running].date_started == started.date_started
        assert (stored[fresh].status, stored[fresh].worker) == (states.SUCCESS, "w2")

    def test_refused_write_changes_no_column(self, driver: Any, db_alias: str) -> None:
        """A refused write leaves every column as stored, in one statement where promised.

        On MySQL this is why ``status`` is assigned last: were it assigned first, every
        later ``IF`` would compare the new state with itself and let the RETRY replace
        the worker, result and dates of the SUCCESS.
        """
        task_id = new_id()
        driver.ops.store_task_results([row(task_id, states.SUCCESS, worker="w1")])
        before = TaskResult.objects.values().get(task_id=task_id)
        with CaptureQueriesContext(connections[db_alias]) as queries:
            driver.ops.store_task_results(
                [row(task_id, states.RETRY, worker="w2", traceback="tb", date_started=later())]
            )
        if driver.features.supports_single_statement_upsert:
            assert len(queries.captured_queries) == 1
        assert TaskResult.objects.values().get(task_id=task_id) == before

    def test_descriptive_columns_and_date_started_are_kept(self, driver: Any) -> None:
        task_id = new_id()
        driver.ops.store_task_results(
            [row(task_id, states.STARTED, task_name="proj.add", date_started=later())]
        )
        started = TaskResult.objects.get(task_id=task_id).date_started
        driver.ops.store_task_results([row(task_id, states.STARTED, date_started=later())])
        driver.ops.store_task_results([row(task_id, states.SUCCESS)])
        done = TaskResult.objects.get(task_id=task_id)
        assert (done.status, done.task_name, done.date_started) == (
            states.SUCCESS,
            "proj.add",
            started,
        )

    def test_same_text_as_the_generic_driver(self, driver: Any, db_alias: str) -> None:
        """Every column reads back exactly as the ORM would have written it."""
        generic = GenericDriver(db_alias)
        ours, theirs = new_id(), new_id()
        columns = {
            "traceback": "Traceback: ünïcode ✓ 🐍",
            "meta": '{"children": []}',
            "task_args": '"(1, 2)"',
            "task_kwargs": "\"{'z': 3}\"",
            "worker": "celery@host",
            "periodic_task_name": "nightly",
            "task_name": "proj.add",
        }
        when = later()
        driver.ops.store_task_results([row(ours, states.FAILURE, date_done=when, **columns)])
        generic.ops.store_task_results([row(theirs, states.FAILURE, date_done=when, **columns)])
        fields = [
            f.name for f in TaskResult._meta.concrete_fields if f.name not in ("id", "task_id")
        ]
        mine = TaskResult.objects.values(*fields).get(task_id=ours)
        reference = TaskResult.objects.values(*fields).get(task_id=theirs)
        assert mine == reference


class TestNamesAndRequests:
    """What a write takes from the task's state name and request, whatever they hold."""

    def test_a_state_too_long_for_its_column_is_named(self, backend: Any) -> None:
        from ...backends.database import InvalidStateName

        task_id = new_id()
        state = "PROGRESS_" + "X" * 60
        with pytest.raises(InvalidStateName, match="status column holds 50"):
            backend.store_result(task_id, None, state)
        assert not TaskResult.objects.filter(task_id=task_id).exists()
        backend.store_result(task_id, None, "P" * 50)  # the limit itself fits, everywhere
        assert TaskResult.objects.get(task_id=task_id).status == "P" * 50

    def test_a_long_task_name_is_cut_and_logged_once(
        self, backend: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        length = column_length(TaskResult, "task_name")
        name = "tasks." + uuid.uuid4().hex + "x" * length
        ids = [new_id(), new_id()]
        logger = "django_celery_results.backends.database"
        with caplog.at_level(logging.WARNING, logger=logger):
            for task_id in ids:
                req = request(task_id, task=name)
                backend.store_result(task_id, 1, states.SUCCESS, request=req)
        rows = TaskResult.objects.filter(task_id__in=ids)
        stored = set(rows.values_list("task_name", flat=True))
        assert stored == {name[:length]}
        cut = [r for r in caplog.records if "task_name" in r.getMessage()]
        assert len(cut) == 1
        assert f"cut to the column's {length}" in cut[0].getMessage()

    def test_a_request_of_mocks_stores_nulls(self, backend: Any) -> None:
        """Upstream's own tests pass ``MagicMock`` requests: their values are not columns."""
        task_id = new_id()
        fake = mock.MagicMock()
        fake.id = task_id
        fake.group = None
        backend.store_result(task_id, 1, states.SUCCESS, request=fake)
        stored = TaskResult.objects.get(task_id=task_id)
        assert stored.status == states.SUCCESS
        assert (stored.task_name, stored.worker, stored.retries, stored.queue) == (None,) * 4
        assert (stored.task_args, stored.task_kwargs, stored.periodic_task_name) == (None,) * 3

    def test_only_values_of_the_column_type_are_taken(self, backend: Any) -> None:
        task_id = new_id()
        odd = request(task_id, retries=True, hostname=42, task=["x"], argsrepr=b"()")
        backend.store_result(task_id, 1, states.SUCCESS, request=odd)
        stored = TaskResult.objects.get(task_id=task_id)
        assert (stored.task_name, stored.worker, stored.retries) == (None, None, None)
        # argsrepr of bytes is not text: the args themselves (a list) are stored instead.
        assert stored.task_args == "[1, 2]"

    def test_a_chord_counted_down_by_mock_requests(self, backend: Any) -> None:
        """Upstream's chord test: a ``MagicMock`` request's values never reach a column."""
        from celery.result import AsyncResult, GroupResult

        from ...models import ChordCounter

        gid, first, second = new_id(), new_id(), new_id()
        header = GroupResult(gid, [AsyncResult(first), AsyncResult(second)], app=backend.app)
        backend.apply_chord(header, backend.app.signature("tests.add"))
        fake = mock.MagicMock()
        fake.id, fake.group, fake.task = first, gid, "tests.add"
        fake.argsrepr, fake.kwargsrepr, fake.hostname = "argsrepr", "kwargsrepr", "celery@x"
        backend.mark_as_done(first, {"foo": "baz"}, request=fake)
        assert ChordCounter.objects.get(group_id=gid).count == 1
        fake.id = second
        backend.mark_as_failure(second, ValueError(), request=fake)
        assert not ChordCounter.objects.filter(group_id=gid).exists()
        fake.chord.delay.assert_not_called()
