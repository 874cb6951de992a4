"""Reading results: many ids in one query, unknown ids, and what Celery gets back."""

from __future__ import annotations

from typing import Any

from celery import states
from django.db import connections
from django.test.utils import CaptureQueriesContext

from .helpers import new_id, row


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
