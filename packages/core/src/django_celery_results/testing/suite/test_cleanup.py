"""Cleanup: expired rows are deleted in chunks; ``result_expires=None`` keeps everything."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from celery import states
from django.utils import timezone

from ...models import ChordCounter, GroupResult, TaskResult
from .helpers import new_id, row


def age_rows(model: type[Any], ids: list[str], field: str, days: int) -> None:
    model.objects.filter(**{f"{field}__in": ids}).update(
        date_done=timezone.now() - timedelta(days=days)
    )


class TestCleanup:
    """``delete_expired`` and the backend's ``cleanup``."""

    def test_delete_expired_in_chunks(self, driver: Any) -> None:
        old = [new_id() for _ in range(23)]
        fresh = [new_id() for _ in range(5)]
        driver.ops.store_task_results([row(i, states.SUCCESS) for i in old + fresh])
        age_rows(TaskResult, old, "task_id", days=2)
        deleted = driver.ops.delete_expired(TaskResult, timezone.now() - timedelta(days=1), 7)
        assert deleted == 23
        assert set(TaskResult.objects.values_list("task_id", flat=True)) == set(fresh)

    def test_manager_delete_expired(self, driver: Any) -> None:
        old = [new_id() for _ in range(4)]
        driver.ops.store_task_results([row(i, states.SUCCESS) for i in old])
        age_rows(TaskResult, old, "task_id", days=2)
        expired = TaskResult.objects.get_all_expired(timedelta(days=1))
        assert set(expired.values_list("task_id", flat=True)) == set(old)
        assert TaskResult.objects.delete_expired(timedelta(days=1), batch_size=3) == 4
        assert not TaskResult.objects.exists()

    def test_backend_cleanup(self, backend: Any, result_app: Any) -> None:
        old, fresh = new_id(), new_id()
        backend.mark_as_done(old, 1)
        backend.mark_as_done(fresh, 2)
        age_rows(TaskResult, [old], "task_id", days=3)
        group = result_app.GroupResult(new_id(), [result_app.AsyncResult(old)])
        backend.save_group(group.id, group)
        age_rows(GroupResult, [group.id], "group_id", days=3)
        ChordCounter.objects.create(group_id=new_id(), sub_tasks="[]", count=1)
        backend.cleanup()  # result_expires is one hour in the suite's app
        assert list(TaskResult.objects.values_list("task_id", flat=True)) == [fresh]
        assert not GroupResult.objects.exists()
        assert ChordCounter.objects.count() == 1  # live chords are never cleaned up

    def test_result_expires_none_keeps_everything(self, backend: Any) -> None:
        task_id = new_id()
        backend.mark_as_done(task_id, 1)
        age_rows(TaskResult, [task_id], "task_id", days=365)
        backend.expires = None
        backend.cleanup()
        assert TaskResult.objects.filter(task_id=task_id).exists()
