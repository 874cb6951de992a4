"""Publish-time PENDING rows (``TRACK_PENDING``): precedence, earliest date_created, batching."""

from __future__ import annotations

import math
import threading
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from celery import group, states
from django.db import connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from ... import pending
from ...models import GroupResult as GroupResultModel
from ...models import TaskResult
from .helpers import last_id, new_id, request, row

#: What a driver's ``from django_celery_results.testing.suite import *`` takes.
__all__ = ["TestPendingAndTransactions", "TestPendingAtPublish", "TestPendingWrites"]


class TestPendingAtPublish:
    """``before_task_publish`` writes a PENDING row stamped with the send time."""

    @pytest.mark.parametrize("bad_id", ["x" * 300, "nul\x00inside"])
    def test_a_bad_id_is_refused_while_sending(self, sender: Any, bad_id: str) -> None:
        """``InvalidTaskId`` at ``send_task``; the good tasks around it keep their rows."""
        from ...backends.database import InvalidTaskId

        before = [sender.send_task("tests.add").id for _ in range(25)]
        with pytest.raises(InvalidTaskId, match="task_id"):
            sender.send_task("tests.add", task_id=bad_id)
        after = [sender.send_task("tests.add").id for _ in range(25)]
        assert pending.flush(10)
        found = TaskResult.objects.filter(task_id__in=before + after)
        assert found.count() == 50
        assert set(found.values_list("status", flat=True)) == {states.PENDING}

    def test_one_bad_row_loses_only_itself(
        self, sender: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The writer falls back row by row when a many-row statement fails for good."""
        good = [row(new_id(), states.PENDING) for _ in range(50)]
        bad = row("y" * 300, states.PENDING)
        rows = [*good[:20], bad, *good[20:]]
        with caplog.at_level("ERROR", logger="django_celery_results.losses"):
            pending.write(rows)
        stored = set(TaskResult.objects.values_list("task_id", flat=True))
        assert {r.task_id for r in good} <= stored
        if bad.task_id not in stored:  # a database that checks lengths (not SQLite)
            (record,) = caplog.records
            assert bad.task_id in record.getMessage()
            assert "PENDING" in record.getMessage()

    def test_sent_task_gets_a_pending_row(self, sender: Any) -> None:
        before = timezone.now()
        result = sender.send_task("tests.add", args=(1, 2), kwargs={"z": 3})
        after = timezone.now()
        assert pending.flush(10)
        stored = TaskResult.objects.get(task_id=result.id)
        assert stored.status == states.PENDING
        assert stored.task_name == "tests.add"
        assert before <= stored.date_created <= after
        assert (stored.task_args, stored.task_kwargs) == ('"(1, 2)"', "\"{'z': 3}\"")
        assert stored.worker is None
        assert sender.AsyncResult(result.id).state == states.PENDING

    @pytest.mark.parametrize(
        "result_app_config",
        [{"result_backend": "django-db", "result_extended": False}],
    )
    def test_extended_off_stores_name_only(self, sender: Any) -> None:
        result = sender.send_task("tests.add", args=(1, 2))
        assert pending.flush(10)
        stored = TaskResult.objects.get(task_id=result.id)
        assert stored.task_name == "tests.add"
        assert (stored.task_args, stored.task_kwargs, stored.periodic_task_name) == (
            None,
            None,
            None,
        )

    def test_the_worker_updates_the_row_sent(self, sender: Any, backend: Any) -> None:
        # The PENDING row draws the task's one id; STARTED and SUCCESS update it.
        from ...drivers import driver_for_model

        driver = driver_for_model(TaskResult)
        sender.send_task("tests.add")
        assert pending.flush(10)
        before = last_id(driver)
        results = [sender.send_task("tests.add") for _ in range(10)]
        assert pending.flush(10)
        for result in results:
            req = request(result.id)
            backend.store_result(result.id, {"pid": 1}, states.STARTED, request=req)
            backend.store_result(result.id, 3, states.SUCCESS, request=req)
        assert last_id(driver) - before <= len(results)
        done = TaskResult.objects.filter(task_id__in=[r.id for r in results])
        assert sorted(done.values_list("status", flat=True)) == [states.SUCCESS] * 10

    def test_queue_is_the_routing_key_it_was_sent_with(self, sender: Any, backend: Any) -> None:
        default = sender.send_task("tests.add")
        billing = sender.send_task("tests.add", queue="billing")
        assert pending.flush(10)
        assert TaskResult.objects.get(task_id=default.id).queue == "celery"
        assert TaskResult.objects.get(task_id=billing.id).queue == "billing"
        backend.store_result(billing.id, 1, states.SUCCESS)  # a write without the request
        assert TaskResult.objects.get(task_id=billing.id).queue == "billing"

    def test_periodic_task_name_from_beat_header(self, sender: Any) -> None:
        result = sender.send_task("tests.add", headers={"periodic_task_name": "nightly"})
        assert pending.flush(10)
        assert TaskResult.objects.get(task_id=result.id).periodic_task_name == "nightly"

    def test_ignore_result_gets_no_row(self, sender: Any) -> None:
        @sender.task(name="tests.ignored", ignore_result=True, shared=False)
        def ignored() -> None:
            """A task whose result is never stored."""

        result = ignored.delay()
        explicit = sender.send_task("tests.add", ignore_result=True)
        assert pending.flush(10)
        assert not TaskResult.objects.filter(task_id__in=[result.id, explicit.id]).exists()

    def test_off_by_default(self, result_app: Any, backend: Any) -> None:
        from celery import _state

        result_app.conf.broker_url = "memory://"
        previous = _state.get_current_app()
        result_app.set_current()
        try:
            result = result_app.send_task("tests.add")
        finally:
            previous.set_current()
        assert pending.flush(10)
        assert not TaskResult.objects.filter(task_id=result.id).exists()

    def test_group_rows_are_written(self, sender: Any) -> None:
        signatures = [sender.signature("tests.add", args=(i, i)) for i in range(200)]
        result = group(signatures).apply_async()
        assert pending.flush(10)
        ids = [r.id for r in result.results]
        assert TaskResult.objects.filter(task_id__in=ids, status=states.PENDING).count() == 200


class TestPendingAndTransactions:
    """The PENDING row is written outside the sender's transaction, as the message is."""

    def test_rolled_back_sender_keeps_the_row(self, sender: Any, db_alias: str) -> None:
        """The message is on the broker whatever the transaction does: so is the row."""
        group_id = new_id()
        sent: list[str] = []

        def send_then_fail() -> None:
            with transaction.atomic(using=db_alias):
                GroupResultModel.objects.create(group_id=group_id, result="[]")
                sent.append(sender.send_task("tests.add").id)
                raise RuntimeError("roll back")

        with pytest.raises(RuntimeError):
            send_then_fail()
        assert pending.flush(10)
        assert not GroupResultModel.objects.filter(group_id=group_id).exists()
        assert TaskResult.objects.get(task_id=sent[0]).status == states.PENDING

    def test_worker_writing_before_the_sender_commits(
        self, sender: Any, backend: Any, db_alias: str
    ) -> None:
        """No lock is shared: the worker's STARTED and the PENDING row meet in the upsert."""
        done = threading.Event()

        def worker(task_id: str) -> None:
            try:
                backend.store_result(task_id, None, states.STARTED)
            finally:
                connections[db_alias].close()
                done.set()

        before = timezone.now()
        with transaction.atomic(using=db_alias):
            result = sender.send_task("tests.add")
            thread = threading.Thread(target=worker, args=(result.id,))
            thread.start()
            assert done.wait(20), "the worker's write waited for the sender's transaction"
        thread.join(10)
        assert pending.flush(10)
        stored = TaskResult.objects.get(task_id=result.id)
        assert stored.status == states.STARTED
        assert stored.date_started is not None
        assert before <= stored.date_created <= stored.date_started


class TestPendingWrites:
    """``store_pending_results`` against rows a fast worker wrote first."""

    def test_never_overwrites_a_later_state(self, driver: Any) -> None:
        task_id = new_id()
        sent = timezone.now() - timedelta(seconds=5)
        driver.ops.store_task_results([row(task_id, states.STARTED, worker="w1")])
        driver.ops.store_task_results([row(task_id, states.SUCCESS, worker="w1")])
        before = TaskResult.objects.get(task_id=task_id)
        driver.ops.store_pending_results([row(task_id, states.PENDING, date_done=sent)])
        after = TaskResult.objects.get(task_id=task_id)
        assert (after.status, after.result, after.worker, after.date_done) == (
            before.status,
            before.result,
            before.worker,
            before.date_done,
        )
        assert after.date_created == sent

    def test_date_created_keeps_the_earliest(self, driver: Any) -> None:
        task_id = new_id()
        first = timezone.now() - timedelta(seconds=10)
        driver.ops.store_pending_results([row(task_id, states.PENDING, date_done=first)])
        later = first + timedelta(seconds=3)
        driver.ops.store_pending_results([row(task_id, states.PENDING, date_done=later)])
        driver.ops.store_task_results([row(task_id, states.STARTED)])
        stored = TaskResult.objects.get(task_id=task_id)
        assert stored.status == states.STARTED
        assert stored.date_created == first

    def test_worker_writes_after_pending_keep_the_send_time(self, driver: Any) -> None:
        task_id = new_id()
        sent = timezone.now() - timedelta(seconds=2)
        driver.ops.store_pending_results(
            [row(task_id, states.PENDING, date_done=sent, task_name="tests.add")]
        )
        driver.ops.store_task_results([row(task_id, states.STARTED, date_started=timezone.now())])
        driver.ops.store_task_results([row(task_id, states.SUCCESS)])
        stored = TaskResult.objects.get(task_id=task_id)
        assert (stored.status, stored.task_name, stored.date_created) == (
            states.SUCCESS,
            "tests.add",
            sent,
        )
        assert stored.waiting_time is not None
        assert stored.waiting_time >= timedelta(seconds=2)
        assert stored.total_time is not None
        assert stored.total_time >= stored.waiting_time

    def test_a_group_is_few_statements(self, driver: Any, db_alias: str) -> None:
        ids = [new_id() for _ in range(1000)]
        existing = ids[::100]
        driver.ops.store_task_results([row(i, states.STARTED) for i in existing])
        sent = timezone.now() - timedelta(seconds=1)
        rows = [row(i, states.PENDING, date_done=sent) for i in ids]
        with CaptureQueriesContext(connections[db_alias]) as queries:
            driver.ops.store_pending_results(rows)
        # Where a statement takes few parameters (SQLite's 999: 49 rows of 20 columns per
        # INSERT), the rows need more statements: Django's features say how many it takes.
        max_params = connections[db_alias].features.max_query_params
        columns = sum(not field.primary_key for field in TaskResult._meta.concrete_fields)
        limit = 8 if max_params is None else 9 + math.ceil(len(rows) * columns / max_params)
        assert len(queries.captured_queries) <= limit
        stored = dict(TaskResult.objects.filter(task_id__in=ids).values_list("task_id", "status"))
        assert len(stored) == 1000
        assert {stored[i] for i in existing} == {states.STARTED}
        assert TaskResult.objects.filter(task_id__in=existing, date_created=sent).count() == 10

    def test_a_failed_write_is_logged_not_raised(
        self, driver: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        task_id = new_id()
        failing = mock.patch.object(
            driver.ops, "store_pending_results", side_effect=ValueError("not transient")
        )
        with failing, caplog.at_level("ERROR", logger="django_celery_results.losses"):
            pending.write([row(task_id, states.PENDING)])
        assert f"Lost the PENDING state of task {task_id}" in caplog.text
