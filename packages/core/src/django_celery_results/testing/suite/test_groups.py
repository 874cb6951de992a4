"""Groups: save, restore, delete, and joins that read the whole group per poll."""

from __future__ import annotations

import json
from typing import Any

from celery import states
from celery.result import GroupResult
from django.db import connections
from django.test.utils import CaptureQueriesContext

from ...models import GroupResult as GroupResultModel
from .helpers import loads, new_id

#: What a driver's ``from django_celery_results.testing.suite import *`` takes.
__all__ = ["TestGroups"]


def make_group(app: Any, size: int) -> GroupResult:
    return GroupResult(new_id(), [app.AsyncResult(new_id()) for _ in range(size)], app=app)


class TestGroups:
    """``save_group`` / ``restore_group`` / ``delete_group`` and ``join_native``."""

    def test_save_and_restore(self, backend: Any, result_app: Any) -> None:
        group = make_group(result_app, 3)
        backend.save_group(group.id, group)
        stored = GroupResultModel.objects.get(group_id=group.id)
        assert loads(stored.result) == json.loads(json.dumps(group.as_tuple()))
        restored = backend.restore_group(group.id, cache=False)
        assert [r.id for r in restored.results] == [r.id for r in group.results]
        assert result_app.GroupResult.restore(group.id, backend=backend).id == group.id

    def test_save_twice_replaces(self, backend: Any, result_app: Any) -> None:
        group = make_group(result_app, 2)
        backend.save_group(group.id, group)
        bigger = GroupResult(group.id, [*group.results, result_app.AsyncResult(new_id())])
        backend._save_group(group.id, result=bigger)
        restored = backend.restore_group(group.id, cache=False)
        assert len(restored.results) == 3
        assert GroupResultModel.objects.filter(group_id=group.id).count() == 1

    def test_save_group_calling_conventions(self, backend: Any, result_app: Any) -> None:
        first, second, third = (make_group(result_app, 1) for _ in range(3))
        backend._save_group(first.id, first)
        backend._save_group(second.id, result=second)
        backend._save_group(third.id, group_result=third)
        stored = set(GroupResultModel.objects.values_list("group_id", flat=True))
        assert {first.id, second.id, third.id} <= stored

    def test_restore_unknown_group(self, backend: Any) -> None:
        assert backend.restore_group(new_id(), cache=False) is None

    def test_delete(self, backend: Any, result_app: Any) -> None:
        group = make_group(result_app, 1)
        backend.save_group(group.id, group)
        backend.delete_group(group.id)
        assert not GroupResultModel.objects.filter(group_id=group.id).exists()
        backend.delete_group(group.id)  # deleting a missing group is not an error

    def test_join_reads_the_group_in_one_query(
        self, backend: Any, result_app: Any, db_alias: str
    ) -> None:
        group = make_group(result_app, 50)
        for i, result in enumerate(group.results):
            backend.mark_as_done(result.id, i)
        backend._cache.clear()
        with CaptureQueriesContext(connections[db_alias]) as queries:
            assert group.join_native(timeout=5) == list(range(50))
        assert len(queries.captured_queries) == 1
        assert group.get(timeout=5) == list(range(50))

    def test_join_waits_for_pending_results(self, backend: Any, result_app: Any) -> None:
        group = make_group(result_app, 2)
        backend.mark_as_done(group.results[0].id, 1)
        backend.store_result(group.results[1].id, None, states.STARTED)
        try:
            group.join_native(timeout=0.3, interval=0.1)
        except TimeoutError:
            pass
        else:  # pragma: no cover - the assertion below explains
            raise AssertionError("join_native returned while a task was still STARTED")
