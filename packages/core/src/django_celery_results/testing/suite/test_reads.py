"""Reading results: many ids in one query, unknown ids, and what Celery gets back."""

from __future__ import annotations

import uuid
import warnings
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from celery import states
from django.db import connections
from django.test.utils import CaptureQueriesContext
from kombu.serialization import registry

from ...models import TaskResult
from .helpers import new_id, row

#: What a driver's ``from django_celery_results.testing.suite import *`` takes.
__all__ = ["TestReads"]

#: Results the JSON fast paths must write and read exactly as kombu's codec does.
JSON_RESULTS = [
    3,
    "plain text",
    "h\u00e9llo \u2603",
    {"nested": [1, 2.5, None, True]},
    datetime(2026, 11, 30, 12, 0, tzinfo=UTC),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    Decimal("1.50"),
    b"\x00bytes",
    {"text": "a value that mentions __type__", "n": 1},
]


class TestReads:
    """``get_task_results`` and the backend's meta."""

    def test_many_ids_in_one_query(self, driver: Any, db_alias: str) -> None:
        ids = [new_id() for _ in range(300)]
        driver.ops.store_task_results([row(i, states.SUCCESS) for i in ids])
        asked = [*ids, new_id(), new_id()]
        with CaptureQueriesContext(connections[db_alias]) as queries:
            found = driver.ops.get_task_results(asked)
        assert set(found) == set(ids)
        assert all(found[i].status == states.SUCCESS for i in ids)
        assert len(queries.captured_queries) == 1

    @pytest.mark.parametrize("value", JSON_RESULTS, ids=repr)
    def test_json_result_reads_as_kombu_decodes_it(self, backend: Any, value: Any) -> None:
        task_id = new_id()
        backend.store_result(task_id, value, states.SUCCESS)
        text = TaskResult.objects.get(task_id=task_id).result
        assert text == registry.dumps(value, serializer="json")[2]  # type: ignore[no-untyped-call]
        expected = registry.loads(text, "application/json", "utf-8")  # type: ignore[no-untyped-call]
        assert backend.get_task_meta(task_id, cache=False)["result"] == expected
        assert expected == value or isinstance(value, bytes | Decimal)

    def test_a_poll_reads_the_meta_columns_of_one_row(self, driver: Any, backend: Any) -> None:
        from ...drivers import TASK_META_COLUMNS

        task_id = new_id()
        backend.store_result(task_id, {"n": 1}, states.FAILURE, traceback="Traceback…")
        values = driver.ops.get_task_meta_values(task_id)
        obj = TaskResult.objects.get(task_id=task_id)
        assert values == tuple(getattr(obj, column) for column in TASK_META_COLUMNS)
        assert values[3].tzinfo is not None  # date_done, aware as the ORM loads it
        assert driver.ops.get_task_meta_values(new_id()) is None

    def test_a_poll_in_eager_mode_warns_until_it_is_turned_off(
        self, backend: Any, result_app: Any
    ) -> None:
        task_id = new_id()
        backend.store_result(task_id, 3, states.SUCCESS)
        result_app.conf.task_always_eager = True
        try:
            for _ in range(2):  # every poll, not the first only
                with pytest.warns(RuntimeWarning, match="task_always_eager"):
                    assert backend.get_task_meta(task_id, cache=False)["result"] == 3
        finally:
            result_app.conf.task_always_eager = False
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert backend.get_task_meta(task_id, cache=False)["result"] == 3

    def test_a_poll_builds_the_meta_a_row_gives(self, backend: Any) -> None:
        # The poll's direct path and the model's path (groups, chords) give one meta.
        task_id = new_id()
        backend.store_result(task_id, [1, "a"], states.SUCCESS)
        # Meta injected by a task (upstream #366) joins the meta, as upstream reads it.
        TaskResult.objects.filter(task_id=task_id).update(
            meta='{"children": [], "progress": 3}', worker="celery@here", queue="q1", retries=2
        )
        meta = backend.get_task_meta(task_id, cache=False)
        assert meta == backend._meta_from_row(TaskResult.objects.get(task_id=task_id))
        stored = TaskResult.objects.get(task_id=task_id)
        assert meta == {
            "task_id": task_id,
            "status": states.SUCCESS,
            "result": [1, "a"],
            "date_done": stored.date_done,
            "traceback": None,
            "children": [],
            "progress": 3,
            "task_name": stored.task_name,
            "task_args": meta["task_args"],
            "task_kwargs": meta["task_kwargs"],
            "args": meta["task_args"],
            "kwargs": meta["task_kwargs"],
            "worker": "celery@here",
            "retries": 2,
            "queue": "q1",
        }

    def test_no_ids(self, driver: Any) -> None:
        assert driver.ops.get_task_results([]) == {}

    def test_unknown_task_is_pending(self, backend: Any) -> None:
        meta = backend.get_task_meta(new_id())
        assert meta["status"] == states.PENDING
        assert meta["result"] is None

    def test_async_result_reads_through_the_backend(self, backend: Any, result_app: Any) -> None:
        task_id = new_id()
        backend.mark_as_done(task_id, {"x": 1})
        result = result_app.AsyncResult(task_id)
        assert result.successful()
        assert result.get(timeout=5) == {"x": 1}
