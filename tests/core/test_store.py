"""``store``: the backend's one way to the task table, queued or at once, read-your-writes."""

from __future__ import annotations

from typing import Any

import pytest
from celery import states
from django.db import transaction

from django_celery_results import batching, pending, store
from django_celery_results.models import TaskResult
from django_celery_results.testing.suite.helpers import new_id, row
from django_celery_results.testing.suite.test_batching import batched  # noqa: F401  (a fixture)


def in_table(task_id: str) -> list[str]:
    """The states stored for ``task_id``, read with the ORM (nothing flushed first)."""
    return list(TaskResult.objects.filter(task_id=task_id).values_list("status", flat=True))


def test_a_state_is_written_at_once_without_batching(driver: Any) -> None:
    task_id = new_id()
    store.store_task_row(driver, row(task_id, states.STARTED))
    assert in_table(task_id) == [states.STARTED]


@pytest.mark.usefixtures("batched")
def test_a_queued_state_is_written_before_a_read_of_its_id(driver: Any) -> None:
    task_id, other = new_id(), new_id()
    store.store_task_row(driver, row(task_id, states.STARTED))
    assert in_table(task_id) == []  # queued
    assert list(store.read_task_results(driver, [other])) == []
    assert in_table(task_id) == []  # a read of another id leaves it queued
    assert store.read_task_results(driver, [task_id])[task_id].status == states.STARTED
    assert store.read_task_meta_values(driver, task_id) is not None


@pytest.mark.usefixtures("batched")
def test_inside_a_transaction_the_write_belongs_to_it(driver: Any, db_alias: str) -> None:
    task_id = new_id()
    store.store_task_row(driver, row(task_id, states.STARTED))
    with transaction.atomic(using=db_alias):
        store.store_task_row(driver, row(task_id, states.SUCCESS))
        transaction.set_rollback(True, using=db_alias)
    # The queued STARTED went out first, outside; the SUCCESS went with the transaction.
    assert in_table(task_id) == [states.STARTED]


@pytest.mark.usefixtures("batched")
def test_exists_writes_queued_states_and_pending_rows_first(driver: Any) -> None:
    queued, sent = new_id(), new_id()
    store.store_task_row(driver, row(queued, states.STARTED))
    pending.writer().add(row(sent, states.PENDING))
    assert store.task_result_exists(driver, queued)
    assert store.task_result_exists(driver, sent)
    assert not store.task_result_exists(driver, new_id())
    assert pending.release(10)


@pytest.mark.usefixtures("batched")
def test_a_delete_is_not_undone_by_a_queued_state(driver: Any) -> None:
    task_id = new_id()
    store.store_task_row(driver, row(task_id, states.STARTED))
    store.delete_task_result(driver, task_id)
    assert batching.flush(10)
    assert in_table(task_id) == []
