"""The conformance suite against the generic driver, on every database leg."""

from celery import states
from django.db import connections
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_celery_results.drivers import BaseDriver, GenericDriver
from django_celery_results.models import TaskResult
from django_celery_results.testing.suite import *  # noqa: F403
from django_celery_results.testing.suite.helpers import new_id, row

# One alias per server: the connection-option variants are the drivers' business.
CONFORMANCE_ALIASES = ["default", "postgres", "mysql"]


def test_core_runs_the_generic_driver(driver: BaseDriver) -> None:
    assert type(driver) is GenericDriver


def statements(queries: CaptureQueriesContext) -> list[str]:
    """Return the kind of each captured statement (INSERT, SELECT, UPDATE …), in order."""
    return [query["sql"].split(None, 1)[0].upper() for query in queries.captured_queries]


def test_a_batch_of_new_ids_is_one_insert(driver: BaseDriver, db_alias: str) -> None:
    """The ORM's multi-row INSERT writes a batch of new tasks; nothing is read or updated."""
    ids = [new_id() for _ in range(40)]  # 600 parameters: one statement on every database
    with CaptureQueriesContext(connections[db_alias]) as queries:
        driver.ops.store_task_results([row(task_id, states.SUCCESS) for task_id in ids])
    assert statements(queries) == ["INSERT"]
    assert TaskResult.objects.filter(task_id__in=ids, status=states.SUCCESS).count() == 40


def test_a_batch_with_stored_ids_reads_them_back_once(driver: BaseDriver, db_alias: str) -> None:
    """Rows the INSERT skipped are found by one read, then written one by one."""
    stored, fresh = new_id(), new_id()
    driver.ops.store_task_results([row(stored, states.STARTED)])
    with CaptureQueriesContext(connections[db_alias]) as queries:
        driver.ops.store_task_results([row(stored, states.SUCCESS), row(fresh, states.SUCCESS)])
    assert statements(queries) == ["INSERT", "SELECT", "UPDATE"]
    assert set(
        TaskResult.objects.filter(task_id__in=[stored, fresh]).values_list("status", flat=True)
    ) == {states.SUCCESS}


def test_with_pending_rows_a_batch_updates_first(driver: BaseDriver, db_alias: str) -> None:
    """TRACK_PENDING stores every task at publish time: nothing to insert, nothing to read."""
    ids = [new_id(), new_id()]
    driver.ops.store_pending_results([row(task_id, states.PENDING) for task_id in ids])
    with (
        override_settings(DJANGO_CELERY_RESULTS={"TRACK_PENDING": True}),
        CaptureQueriesContext(connections[db_alias]) as queries,
    ):
        driver.ops.store_task_results([row(task_id, states.SUCCESS) for task_id in ids])
    assert statements(queries) == ["UPDATE", "UPDATE"]
    assert set(TaskResult.objects.filter(task_id__in=ids).values_list("status", flat=True)) == {
        states.SUCCESS
    }


def test_a_merged_terminal_row_is_inserted_first(driver: BaseDriver, db_alias: str) -> None:
    """A SUCCESS merged with a STARTED never written (batching) is new: one INSERT."""
    task_id, started = new_id(), timezone.now()
    merged = row(task_id, states.SUCCESS, date_started=started, date_created=started)
    with CaptureQueriesContext(connections[db_alias]) as queries:
        driver.ops.store_task_results([merged])
    assert statements(queries) == ["INSERT"]
    stored = TaskResult.objects.get(task_id=task_id)
    assert (stored.status, stored.date_started, stored.date_created) == (
        states.SUCCESS,
        started,
        started,
    )


def test_a_merged_terminal_row_of_a_stored_task(driver: BaseDriver, db_alias: str) -> None:
    """When its task is stored after all, the skipped INSERT is followed by the UPDATE."""
    task_id, started = new_id(), timezone.now()
    driver.ops.store_task_results([row(task_id, states.STARTED, date_started=started)])
    merged = row(task_id, states.SUCCESS, date_started=timezone.now(), date_created=started)
    driver.ops.store_task_results([merged])
    stored = TaskResult.objects.get(task_id=task_id)
    assert (stored.status, stored.date_started) == (states.SUCCESS, started)
