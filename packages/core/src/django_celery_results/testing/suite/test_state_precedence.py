"""State precedence: SUCCESS is final, and terminal states never go back to in-progress."""

from __future__ import annotations

import itertools
from typing import Any

from celery import states

from ...models import TaskResult
from .helpers import new_id, row

#: What a driver's ``from django_celery_results.testing.suite import *`` takes.
__all__ = ["TestStatePrecedence"]

ALL = [
    states.PENDING,
    states.RECEIVED,
    states.STARTED,
    states.RETRY,
    "PROGRESS",
    states.FAILURE,
    states.REVOKED,
    states.SUCCESS,
]
IN_PROGRESS = [states.RECEIVED, states.STARTED, states.RETRY, "PROGRESS"]


def expected(first: str, second: str) -> str:
    """The rule, written out by hand (not with the code under test)."""
    if first == states.SUCCESS:
        return first
    if second == states.PENDING:
        return second if first == states.PENDING else first
    if first in (states.FAILURE, states.REVOKED) and second in IN_PROGRESS:
        return first
    if first == states.FAILURE and second == states.REVOKED:
        return first  # a revoke never replaces the task's own outcome
    return second


class TestStatePrecedence:
    """Every ordered pair of states, written one after the other to the same task id."""

    def _run_pairs(self, driver: Any, *, one_call: bool) -> None:
        cases = {new_id(): pair for pair in itertools.product(ALL, ALL)}
        for task_id, (first, second) in cases.items():
            if one_call:
                driver.ops.store_task_results([row(task_id, first), row(task_id, second)])
            else:
                driver.ops.store_task_results([row(task_id, first)])
                driver.ops.store_task_results([row(task_id, second)])
        stored = dict(TaskResult.objects.values_list("task_id", "status"))
        wrong = {
            pair: stored[task_id]
            for task_id, pair in cases.items()
            if stored[task_id] != expected(*pair)
        }
        assert not wrong, (
            f"(first, second) -> stored state, where the rule says otherwise: {wrong}"
        )

    def test_every_pair_in_two_writes(self, driver: Any) -> None:
        self._run_pairs(driver, one_call=False)

    def test_every_pair_in_one_batch(self, driver: Any) -> None:
        self._run_pairs(driver, one_call=True)

    def test_refused_write_leaves_every_column_alone(self, driver: Any) -> None:
        task_id = new_id()
        driver.ops.store_task_results([row(task_id, states.SUCCESS, result="1", worker="w1")])
        before = TaskResult.objects.get(task_id=task_id)
        driver.ops.store_task_results(
            [row(task_id, states.STARTED, result="2", worker="w2", traceback="late")]
        )
        after = TaskResult.objects.get(task_id=task_id)
        columns = ["status", "result", "worker", "traceback", "date_done", "date_started"]
        assert [getattr(after, c) for c in columns] == [getattr(before, c) for c in columns]

    def test_failure_then_success_after_redelivery(self, backend: Any) -> None:
        task_id = new_id()
        backend.mark_as_failure(task_id, ValueError("first try"), traceback="tb")
        backend.mark_as_done(task_id, 9)
        obj = TaskResult.objects.get(task_id=task_id)
        assert obj.status == states.SUCCESS
        assert obj.traceback is None

    def test_late_started_after_success_through_the_backend(self, backend: Any) -> None:
        task_id = new_id()
        backend.mark_as_started(task_id)
        backend.mark_as_done(task_id, 1)
        backend.mark_as_started(task_id)
        backend.mark_as_retry(task_id, ValueError("late"))
        meta = backend.get_task_meta(task_id, cache=False)
        assert meta["status"] == states.SUCCESS
        assert meta["result"] == 1
