"""Cleanup: expired rows are deleted in chunks; ``result_expires=None`` keeps everything."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from celery import states
from django.db.models.signals import pre_delete
from django.utils import timezone

from ...models import ChordCounter, GroupResult, TaskResult
from .helpers import new_id, row

#: What a driver's ``from django_celery_results.testing.suite import *`` takes.
__all__ = ["TestCleanup"]


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

    def test_delete_signals_still_see_every_row(self, driver: Any) -> None:
        """A driver's own DELETE must step aside when Django has to run delete signals."""
        seen: list[str] = []

        def listener(sender: Any, instance: TaskResult, **kwargs: Any) -> None:
            seen.append(instance.task_id)

        old = [new_id() for _ in range(3)]
        driver.ops.store_task_results([row(i, states.SUCCESS) for i in old])
        age_rows(TaskResult, old, "task_id", days=2)
        pre_delete.connect(listener, sender=TaskResult)
        try:
            deleted = driver.ops.delete_expired(TaskResult, timezone.now() - timedelta(days=1), 2)
        finally:
            pre_delete.disconnect(listener, sender=TaskResult)
        assert deleted == 3
        assert sorted(seen) == sorted(old)

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

    def test_dead_chord_counters_are_removed(self, driver: Any) -> None:
        dead, live, fresh = ([new_id() for _ in range(3)] for _ in range(3))
        stored = dead + live[:2] + fresh  # live[2] has not finished
        driver.ops.store_task_results([row(i, states.SUCCESS) for i in stored])
        age_rows(TaskResult, dead + live[:2], "task_id", days=3)
        counters = {}
        for label, ids in (("dead", dead), ("live", live), ("fresh", fresh)):
            sub_tasks = json.dumps([[[task_id, None], None] for task_id in ids])
            counters[label] = ChordCounter.objects.create(
                group_id=new_id(), sub_tasks=sub_tasks, count=1
            ).group_id
        unreadable = ChordCounter.objects.create(group_id=new_id(), sub_tasks="{", count=1)
        cutoff = timezone.now() - timedelta(days=1)
        assert driver.ops.delete_expired_chord_counters(cutoff, 2) == 1
        assert set(ChordCounter.objects.values_list("group_id", flat=True)) == {
            counters["live"],
            counters["fresh"],
            unreadable.group_id,
        }

    def test_cleanup_removes_dead_chords_before_their_results(
        self, backend: Any, result_app: Any
    ) -> None:
        part = new_id()
        backend.mark_as_done(part, 1)
        age_rows(TaskResult, [part], "task_id", days=3)
        ChordCounter.objects.create(
            group_id=new_id(), sub_tasks=json.dumps([[[part, None], None]]), count=1
        )
        backend.cleanup()
        assert not ChordCounter.objects.exists()
        assert not TaskResult.objects.filter(task_id=part).exists()

    def test_result_expires_none_keeps_everything(self, backend: Any) -> None:
        task_id = new_id()
        backend.mark_as_done(task_id, 1)
        age_rows(TaskResult, [task_id], "task_id", days=365)
        backend.expires = None
        backend.cleanup()
        assert TaskResult.objects.filter(task_id=task_id).exists()
