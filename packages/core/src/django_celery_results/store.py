"""The backend's way to the task table: batched or not, read-your-writes, retried."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.db.models import Q

from . import batching, pending
from .drivers import BaseDriver, TaskRow
from .drivers.retry import with_retry
from .history.rollup import catch_up

if TYPE_CHECKING:
    from .models import TaskResult


def store_task_row(driver: BaseDriver, row: TaskRow) -> None:
    """Write one state change: queued when ``BATCH_WRITES`` is on, else at once.

    Inside the caller's transaction the write belongs to it, as without batching; what
    was queued for the task before it is written first, outside, and kept.
    """
    batcher = batching.batcher_for(driver)
    if batcher is None:
        driver.retrying.store_task_results([row])
    elif driver.connection.in_atomic_block:
        batcher.flush_ids((row.task_id,))
        driver.retrying.store_task_results([row])
    else:
        batcher.store(row)


def read_task_results(driver: BaseDriver, task_ids: Iterable[str]) -> dict[str, TaskResult]:
    """Read stored rows by id, after writing the states this process queued for them."""
    ids = list(task_ids)
    batching.flush_task_ids(ids)
    return driver.retrying.get_task_results(ids)


def read_task_meta_values(driver: BaseDriver, task_id: str) -> tuple[Any, ...] | None:
    """Read a poll's columns of one task, after writing the states queued for it."""
    batching.flush_task_ids((task_id,))
    return driver.retrying.get_task_meta_values(task_id)


def task_result_exists(driver: BaseDriver, task_id: str) -> bool:
    """Ask whether a row is stored, after writing queued states and PENDING rows."""
    batching.flush_task_ids((task_id,))
    pending.flush()
    return driver.retrying.task_result_exists(task_id)


def delete_task_result(driver: BaseDriver, task_id: str) -> None:
    """Delete a row; a state queued for it is written first, so it cannot bring it back.

    The history counts the row first: deleting it never takes the task out of the history.
    """
    batching.flush_task_ids((task_id,))
    # Waiting on a writer's row lock can meet a batch in a deadlock: retried like a write.
    with_retry(driver, catch_up, driver.alias, wait=True, only=Q(task_id=task_id))
    driver.retrying.delete_task_result(task_id)
