"""Storing task results: encodings, extended fields, timestamps and calling conventions."""

from __future__ import annotations

import base64
import pickle
import time
from typing import Any

import pytest
from celery import states

from ...backends.database import InvalidTaskId
from ...models import TaskResult
from .helpers import column_length, last_id, loads, new_id, request, row, status_of, stored

#: What a driver's ``from django_celery_results.testing.suite import *`` takes.
__all__ = ["TestStoreResult"]


class TestStoreResult:
    """``store_result`` and friends write what upstream wrote, once per state change."""

    def test_lifecycle_started_then_success(self, backend: Any) -> None:
        task_id = new_id()
        backend.mark_as_started(task_id, pid=1, hostname="w1")
        started = stored(task_id)
        assert started.status == states.STARTED
        assert started.date_started is not None
        assert loads(started.result) == {"pid": 1, "hostname": "w1"}
        time.sleep(0.01)
        backend.mark_as_done(task_id, 42, request=request(task_id))
        done = stored(task_id)
        assert done.status == states.SUCCESS
        assert loads(done.result) == 42
        assert done.date_started == started.date_started
        assert done.date_done > started.date_done
        assert done.date_created == started.date_created
        assert backend.get_task_meta(task_id, cache=False)["result"] == 42

    def test_a_lifecycle_draws_at_most_one_id_per_task(self, backend: Any, driver: Any) -> None:
        # An upsert draws an id even when it updates: the write after a task's STARTED
        # must not, or a 32-bit id runs out twice as fast as upstream's.
        backend.mark_as_started(new_id())  # the id sequence exists and has a value
        before = last_id(driver)
        tasks = [new_id() for _ in range(20)]
        for task_id in tasks:
            req = request(task_id)
            backend.store_result(task_id, {"pid": 1}, states.STARTED, request=req)
            backend.store_result(task_id, None, states.RETRY, request=req)
            backend.store_result(task_id, {"pid": 1}, states.STARTED, request=req)
            backend.store_result(task_id, 3, states.SUCCESS, request=req)
        assert last_id(driver) - before <= len(tasks)
        assert {status_of(task_id) for task_id in tasks} == {states.SUCCESS}

    def test_an_update_that_finds_no_row_inserts_it(self, backend: Any) -> None:
        # The write after STARTED updates first; a row deleted meanwhile (forgotten,
        # cleaned up) is written again, not lost.
        task_id = new_id()
        req = request(task_id)
        backend.store_result(task_id, None, states.STARTED, request=req)
        TaskResult.objects.filter(task_id=task_id).delete()
        backend.store_result(task_id, 3, states.SUCCESS, request=req)
        assert status_of(task_id) == states.SUCCESS
        assert loads(stored(task_id).result) == 3

    def test_an_update_keeps_precedence(self, backend: Any) -> None:
        # SUCCESS stored by another worker meanwhile: this process's RETRY after its
        # own STARTED is refused by the update and by the upsert behind it.
        task_id = new_id()
        req = request(task_id)
        backend.store_result(task_id, None, states.STARTED, request=req)
        TaskResult.objects.filter(task_id=task_id).update(status=states.SUCCESS)
        backend.store_result(task_id, None, states.RETRY, request=req)
        assert status_of(task_id) == states.SUCCESS

    def test_date_started_is_kept_once_set(self, backend: Any) -> None:
        task_id = new_id()
        backend.store_result(task_id, None, states.STARTED)
        first = stored(task_id).date_started
        time.sleep(0.01)
        backend.store_result(task_id, None, states.RETRY)
        backend.store_result(task_id, None, states.STARTED)
        assert stored(task_id).date_started == first

    def test_extended_fields(self, backend: Any) -> None:
        task_id = new_id()
        req = request(task_id, periodic_task_name="every-minute")
        backend.store_result(task_id, 3, states.SUCCESS, request=req)
        obj = stored(task_id)
        assert obj.task_name == "tests.add"
        assert obj.worker == "celery@conformance"
        assert obj.periodic_task_name == "every-minute"
        # Protocol 2: the repr strings, JSON-encoded (upstream's stored form).
        assert obj.task_args == '"(1, 2)"'
        assert obj.task_kwargs == "\"{'z': 3}\""
        meta = backend.get_task_meta(task_id, cache=False)
        assert meta["args"] == "(1, 2)"
        assert meta["kwargs"] == "{'z': 3}"
        assert meta["task_name"] == "tests.add"
        assert meta["worker"] == "celery@conformance"
        assert (obj.retries, obj.queue) == (0, "celery")
        assert (meta["retries"], meta["queue"]) == (0, "celery")

    def test_retries_and_queue_come_from_the_request(self, backend: Any, result_app: Any) -> None:
        task_id = new_id()
        req = request(task_id, retries=3, delivery_info={"routing_key": "billing"})
        backend.store_result(task_id, None, states.RETRY, request=req)
        obj = stored(task_id)
        assert (obj.retries, obj.queue) == (3, "billing")
        result = result_app.AsyncResult(task_id)
        assert (result.retries, result.queue) == (3, "billing")  # Celery's own properties

    def test_each_write_stores_its_own_request(self, backend: Any) -> None:
        # The columns of a request are computed once and reused for its later writes:
        # another request, or none, must not get them.
        first, second, bare = new_id(), new_id(), new_id()
        req = request(first)
        backend.store_result(first, None, states.STARTED, request=req)
        other = request(second, task="tests.mul", hostname="celery@other", argsrepr="(7,)")
        backend.store_result(second, 6, states.SUCCESS, request=other)
        backend.store_result(bare, 1, states.SUCCESS)
        backend.store_result(first, "boom", states.FAILURE, traceback="Traceback…", request=req)
        assert stored(first).status == states.FAILURE
        columns = {
            task_id: (obj.task_name, obj.worker, obj.task_args)
            for task_id in (first, second, bare)
            for obj in [stored(task_id)]
        }
        assert columns == {
            first: ("tests.add", "celery@conformance", '"(1, 2)"'),
            second: ("tests.mul", "celery@other", '"(7,)"'),
            bare: (None, None, None),
        }

    def test_protocol_1_stores_the_values(self, backend: Any) -> None:
        task_id = new_id()
        req = request(task_id, argsrepr=None, kwargsrepr=None)
        backend.store_result(task_id, 3, states.SUCCESS, request=req)
        obj = stored(task_id)
        assert loads(obj.task_args) == [1, 2]
        assert loads(obj.task_kwargs) == {"z": 3}

    @pytest.mark.parametrize(
        "result_app_config",
        [{"result_backend": "django-db", "result_extended": False}],
    )
    def test_extended_off_stores_no_request_fields(self, backend: Any) -> None:
        task_id = new_id()
        backend.store_result(task_id, 3, states.SUCCESS, request=request(task_id))
        obj = stored(task_id)
        assert (obj.task_name, obj.task_args, obj.task_kwargs, obj.worker) == (None,) * 4

    def test_write_without_request_keeps_stored_name(self, backend: Any) -> None:
        task_id = new_id()
        backend.store_result(task_id, None, states.STARTED, request=request(task_id))
        backend.store_result(task_id, 5, states.SUCCESS)
        obj = stored(task_id)
        assert obj.status == states.SUCCESS
        assert obj.task_name == "tests.add"
        assert obj.worker == "celery@conformance"
        assert (obj.retries, obj.queue) == (0, "celery")

    @pytest.mark.parametrize(
        "result_app_config",
        [
            {
                "result_backend": "django-db",
                "result_extended": True,
                "result_serializer": "pickle",
                "accept_content": ["pickle"],
                "result_accept_content": ["pickle"],
            }
        ],
    )
    def test_pickle_is_stored_as_base64(self, backend: Any) -> None:
        task_id = new_id()
        backend.store_result(task_id, {"a": (1, 2)}, states.SUCCESS, request=request(task_id))
        obj = stored(task_id)
        assert obj.content_type == "application/x-python-serialize"
        assert obj.content_encoding == "binary"
        assert pickle.loads(base64.b64decode(obj.result or "")) == {"a": (1, 2)}
        assert pickle.loads(base64.b64decode(obj.task_args or "")) == "(1, 2)"
        assert backend.get_task_meta(task_id, cache=False)["result"] == {"a": (1, 2)}

    def test_meta_injection_and_children(self, backend: Any) -> None:
        task_id = new_id()
        req = request(task_id, meta={"key": "value"})
        backend.store_result(task_id, 1, states.SUCCESS, request=req)
        assert loads(stored(task_id).meta) == {"key": "value", "children": []}
        meta = backend.get_task_meta(task_id, cache=False)
        assert meta["key"] == "value"
        assert meta["children"] == []

    def test_failure_keeps_exception_and_traceback(self, backend: Any) -> None:
        task_id = new_id()
        try:
            raise KeyError("boom")
        except KeyError as exc:
            backend.mark_as_failure(task_id, exc, traceback="Traceback: boom")
        obj = stored(task_id)
        assert obj.status == states.FAILURE
        assert obj.traceback == "Traceback: boom"
        meta = backend.get_task_meta(task_id, cache=False)
        assert isinstance(meta["result"], KeyError)

    def test_custom_state(self, backend: Any) -> None:
        task_id = new_id()
        backend.store_result(task_id, {"done": 10}, "PROGRESS")
        assert status_of(task_id) == "PROGRESS"

    @pytest.mark.parametrize("convention", ["positional", "state", "status"])
    def test_calling_conventions(self, backend: Any, convention: str) -> None:
        task_id = new_id()
        encoded = backend.encode_result(7, states.SUCCESS)
        if convention == "positional":
            backend._store_result(task_id, encoded, states.SUCCESS, None)
        else:
            backend._store_result(task_id, encoded, **{convention: states.SUCCESS})
        assert status_of(task_id) == states.SUCCESS

    def test_task_id_longer_than_column_is_refused(self, backend: Any) -> None:
        max_length = column_length(TaskResult, "task_id")
        task_id = "x" * (max_length + 1)
        with pytest.raises(InvalidTaskId, match="DJANGO_CELERY_RESULTS_TASK_ID_MAX_LENGTH"):
            backend.store_result(task_id, 1, states.SUCCESS)
        assert not TaskResult.objects.filter(task_id__startswith="xxx").exists()

    def test_task_id_of_full_column_length(self, backend: Any) -> None:
        task_id = "y" * column_length(TaskResult, "task_id")
        backend.store_result(task_id, 1, states.SUCCESS)
        assert status_of(task_id) == states.SUCCESS

    def test_long_worker_name_is_cut_to_its_column(self, backend: Any) -> None:
        task_id = new_id()
        req = request(task_id, hostname="celery@" + "h" * 300)
        backend.store_result(task_id, 1, states.SUCCESS, request=req)
        assert stored(task_id).worker == ("celery@" + "h" * 300)[:100]

    def test_manager_store_result(self, db_alias: str) -> None:
        task_id = new_id()
        obj = TaskResult.objects.store_result(
            "application/json", "utf-8", task_id, "1", states.SUCCESS, using=db_alias
        )
        assert obj.task_id == task_id
        assert obj.status == states.SUCCESS
        assert TaskResult.objects.get_task(task_id).result == "1"

    def test_manager_store_result_takes_retries_and_queue_by_keyword(self, db_alias: str) -> None:
        task_id = new_id()
        obj = TaskResult.objects.store_result(
            "application/json", "utf-8", task_id, "1", states.RETRY, None, None, None,
            None, None, None, None, db_alias, retries=4, queue="billing",
        )  # fmt: skip
        assert (obj.retries, obj.queue) == (4, "billing")

    def test_get_task_of_unknown_id_is_unsaved_pending(self, db_alias: str) -> None:
        obj = TaskResult.objects.get_task(new_id())
        assert obj.pk is None
        assert obj.status == states.PENDING

    def test_forget(self, backend: Any) -> None:
        task_id = new_id()
        backend.store_result(task_id, 1, states.SUCCESS)
        backend.forget(task_id)
        assert not TaskResult.objects.filter(task_id=task_id).exists()
        backend.forget(task_id)  # forgetting twice is fine

    def test_many_rows_in_one_call(self, driver: Any) -> None:
        ids = [new_id() for _ in range(25)]
        driver.ops.store_task_results([row(i, states.STARTED) for i in ids])
        driver.ops.store_task_results([row(i, states.SUCCESS) for i in ids])
        assert set(
            TaskResult.objects.filter(task_id__in=ids).values_list("status", flat=True)
        ) == {states.SUCCESS}

    def test_same_id_twice_in_one_call_applies_in_order(self, driver: Any) -> None:
        task_id = new_id()
        driver.ops.store_task_results(
            [
                row(task_id, states.STARTED),
                row(task_id, states.SUCCESS),
                row(task_id, states.RETRY),
            ]
        )
        assert status_of(task_id) == states.SUCCESS
