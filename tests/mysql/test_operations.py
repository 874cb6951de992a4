"""The MySQL driver's statements, checked by what they do on a real MariaDB server."""

from __future__ import annotations

import threading
import time
import warnings
from datetime import timedelta
from io import StringIO
from typing import Any

import MySQLdb
import pytest
from celery import states
from django.core.management import call_command
from django.db import connections
from django.db.models import Q
from django.db.utils import OperationalError
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_celery_results import checks
from django_celery_results.drivers import sql
from django_celery_results.managers import TxIsolationWarning
from django_celery_results.models import ChordCounter, TaskResult
from django_celery_results.testing.suite.helpers import new_id, row

CONFORMANCE_ALIASES = ["mysql"]


def statements(alias: str) -> CaptureQueriesContext:
    return CaptureQueriesContext(connections[alias])


def test_a_repeated_id_in_one_statement_is_applied_in_order(driver: Any, db_alias: str) -> None:
    first, second = new_id(), new_id()
    rows = [
        row(first, states.STARTED),
        row(second, states.STARTED),
        row(first, states.SUCCESS),
        row(first, states.STARTED),
        row(second, states.RETRY),
    ]
    with statements(db_alias) as queries:
        driver.ops.store_task_results(rows)
    assert len(queries.captured_queries) == 1
    assert TaskResult.objects.get(task_id=first).status == states.SUCCESS
    assert TaskResult.objects.get(task_id=second).status == states.RETRY


def test_a_large_batch_is_cut_by_payload(driver: Any, db_alias: str) -> None:
    ids = [new_id() for _ in range(12)]
    big = '"' + "x" * 1_000_000 + '"'
    with statements(db_alias) as queries:
        driver.ops.store_task_results([row(i, states.SUCCESS, result=big) for i in ids])
    assert len(queries.captured_queries) == 3  # 4 MiB per statement
    assert TaskResult.objects.filter(task_id__in=ids, result=big).count() == 12


def test_allowed_write_changes_every_column(driver: Any) -> None:
    task_id = new_id()
    driver.ops.store_task_results([row(task_id, states.STARTED, worker="w1")])
    started = TaskResult.objects.get(task_id=task_id)
    driver.ops.store_task_results(
        [row(task_id, states.FAILURE, worker="w2", traceback="tb", date_done=_now())]
    )
    failed = TaskResult.objects.get(task_id=task_id)
    assert (failed.status, failed.worker, failed.traceback, failed.result) == (
        states.FAILURE,
        "w2",
        "tb",
        f'"{states.FAILURE}"',
    )
    assert failed.date_done > started.date_done
    assert failed.date_created == started.date_created


def test_same_bytes_as_the_generic_driver(driver: Any, db_alias: str) -> None:
    """utf8mb4 text and dates as MariaDB stores them, byte for byte (the suite compares
    the values Django reads back)."""
    from django_celery_results.drivers import GenericDriver

    ours, theirs = new_id(), new_id()
    when = _now()
    traceback = "Traceback: ünïcode ✓ 🐍"
    driver.ops.store_task_results([row(ours, states.FAILURE, date_done=when, traceback=traceback)])
    GenericDriver(db_alias).ops.store_task_results(
        [row(theirs, states.FAILURE, date_done=when, traceback=traceback)]
    )
    with connections[db_alias].cursor() as cursor:
        cursor.execute(
            "SELECT HEX(traceback), CAST(date_done AS CHAR(26)) "
            "FROM django_celery_results_taskresult WHERE task_id IN (%s, %s)",
            [ours, theirs],
        )
        stored = cursor.fetchall()
    assert stored[0] == stored[1]


def test_chord_decrement_returns_the_count(driver: Any, db_alias: str) -> None:
    group_id = new_id()
    driver.ops.create_chord_counter(group_id, "[]", 2)
    with statements(db_alias) as queries:
        assert driver.ops.chord_part_return(group_id) == 1
    assert len(queries.captured_queries) == 1
    assert "LAST_INSERT_ID(count - 1)" in queries.captured_queries[0]["sql"]
    assert driver.ops.chord_part_return(group_id) == 0
    assert driver.ops.chord_part_return(group_id) == 0  # never below zero
    assert ChordCounter.objects.get(group_id=group_id).count == 0
    assert driver.ops.chord_part_return(new_id()) is None


def test_chord_decrement_does_not_leak_into_inserts(driver: Any, db_alias: str) -> None:
    """LAST_INSERT_ID(expr) is per connection: a later INSERT's id is its own."""
    group_id = new_id()
    driver.ops.create_chord_counter(group_id, "[]", 1000)
    assert driver.ops.chord_part_return(group_id) == 999
    created = ChordCounter.objects.create(group_id=new_id(), sub_tasks="[]", count=1)
    assert ChordCounter.objects.get(pk=created.pk).group_id == created.group_id


def test_cleanup_deletes_oldest_first_in_limited_chunks(driver: Any, db_alias: str) -> None:
    old = timezone.now() - timedelta(days=2)
    ids = [new_id() for _ in range(25)]
    driver.ops.store_task_results(
        [row(i, states.SUCCESS, date_done=old + timedelta(seconds=n)) for n, i in enumerate(ids)]
    )
    # Few rows expire among many live ones: the optimizer finds them by the index.
    live = [new_id() for _ in range(400)]
    driver.ops.store_task_results([row(i, states.SUCCESS) for i in live])
    keep = live[0]
    with connections[db_alias].cursor() as cursor:
        cursor.execute(f"ANALYZE TABLE {TaskResult._meta.db_table}")
    with statements(db_alias) as queries:
        deleted = driver.ops.delete_expired(TaskResult, timezone.now() - timedelta(days=1), 10)
    assert deleted == 25
    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DELETE")]
    assert len(deletes) == 3
    assert all("ORDER BY date_done LIMIT" in sql for sql in deletes)
    # Each full chunk is bounded by its latest date_done, found on the index first; the
    # next chunk starts there (rows deleted but not purged are not walked again).
    assert "date_done <= " in deletes[0]
    assert "date_done` >= " in deletes[1]
    assert list(TaskResult.objects.filter(task_id__in=[*ids, keep]).values_list("task_id")) == [
        (keep,)
    ]


def test_cleanup_walks_id_ranges_where_the_optimizer_would_scan(
    driver: Any, db_alias: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sql, "CHUNK_SECONDS", float("inf"))  # chunks keep their size
    old = timezone.now() - timedelta(days=2)
    ids = [new_id() for _ in range(400)]
    driver.ops.store_task_results([row(i, states.SUCCESS, date_done=old) for i in ids])
    keep = [new_id() for _ in range(5)]
    driver.ops.store_task_results([row(i, states.SUCCESS) for i in keep])
    with connections[db_alias].cursor() as cursor:
        # Rebuilt, so its size is its rows' (earlier tests' deleted rows left pages), and
        # analyzed: the optimizer now knows most rows match and reads the table whole.
        cursor.execute(f"OPTIMIZE TABLE {TaskResult._meta.db_table}")
        cursor.fetchall()
    with statements(db_alias) as queries:
        deleted = driver.ops.delete_expired(TaskResult, timezone.now() - timedelta(days=1), 50)
    assert deleted == 400
    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DELETE")]
    # About 50 rows' worth of ids per chunk, front to back; the last range is open.
    assert 6 <= len(deletes) <= 12
    assert all("WHERE `id` >= " in sql for sql in deletes)
    assert all("AND `id` < " in sql for sql in deletes[:-1])
    assert "`id` < " not in deletes[-1]
    assert set(TaskResult.objects.values_list("task_id", flat=True)) == set(keep)


def test_cleanup_in_id_ranges_stops_at_until(driver: Any, db_alias: str) -> None:
    old = timezone.now() - timedelta(days=2)
    driver.ops.store_task_results(
        [row(new_id(), states.SUCCESS, date_done=old) for _ in range(300)]
    )
    with connections[db_alias].cursor() as cursor:
        cursor.execute(f"OPTIMIZE TABLE {TaskResult._meta.db_table}")  # as above
        cursor.fetchall()
    cutoff = Q(date_done__lt=timezone.now() - timedelta(days=1))
    first = driver.ops.delete_matching(TaskResult, cutoff, 20, until=0.0)
    assert 0 < first < 300
    assert driver.ops.delete_matching(TaskResult, cutoff, 20) == 300 - first
    assert not TaskResult.objects.exists()


def test_one_id_is_read_with_aware_dates(driver: Any, db_alias: str) -> None:
    task_id = new_id()
    driver.ops.store_task_results([row(task_id, states.STARTED, date_started=_now())])
    with statements(db_alias) as queries:
        found = driver.ops.get_task_results([task_id])[task_id]
    assert len(queries.captured_queries) == 1
    reference = TaskResult.objects.get(task_id=task_id)
    assert [getattr(found, f.attname) for f in TaskResult._meta.concrete_fields] == [
        getattr(reference, f.attname) for f in TaskResult._meta.concrete_fields
    ]
    assert found.date_done.tzinfo is not None
    assert found._state.db == db_alias
    assert not found._state.adding


@pytest.mark.parametrize(
    ("code", "transient"),
    [
        (1213, True),  # ER_LOCK_DEADLOCK
        (1205, True),  # ER_LOCK_WAIT_TIMEOUT
        (2006, True),  # CR_SERVER_GONE_ERROR
        (2013, True),  # CR_SERVER_LOST
        (4031, True),  # ER_CLIENT_INTERACTION_TIMEOUT
        (1927, True),  # ER_CONNECTION_KILLED (MariaDB)
        (1062, False),  # ER_DUP_ENTRY
        (1406, False),  # ER_DATA_TOO_LONG
        (1969, False),  # ER_STATEMENT_TIMEOUT: it would time out again
    ],
)
def test_transient_error_codes(driver: Any, code: int, transient: bool) -> None:
    error = OperationalError("wrapped by Django")
    error.__cause__ = MySQLdb.OperationalError(code, "from the server")
    assert driver.ops.is_transient_error(error) is transient


def test_a_real_deadlock_is_transient(driver: Any, db_alias: str) -> None:
    """Two sessions lock two rows in opposite orders; InnoDB kills one with 1213."""
    first, second = new_id(), new_id()
    driver.ops.store_task_results([row(first, states.STARTED), row(second, states.STARTED)])
    settings = connections[db_alias].settings_dict
    table = "django_celery_results_taskresult"
    errors: list[BaseException] = []
    barrier = threading.Barrier(2, timeout=10)

    def session(one: str, other: str) -> None:
        db = MySQLdb.connect(
            host=settings["HOST"],
            port=settings["PORT"],
            user=settings["USER"],
            passwd=settings["PASSWORD"],
            db=settings["NAME"],
        )
        try:
            cursor = db.cursor()
            cursor.execute(f"UPDATE {table} SET worker = 'x' WHERE task_id = %s", [one])
            barrier.wait()
            cursor.execute(f"UPDATE {table} SET worker = 'y' WHERE task_id = %s", [other])
            db.commit()  # type: ignore[no-untyped-call]
        except MySQLdb.Error as exc:
            errors.append(exc)
            db.rollback()  # type: ignore[no-untyped-call]
        finally:
            db.close()  # type: ignore[no-untyped-call]

    threads = [
        threading.Thread(target=session, args=(first, second)),
        threading.Thread(target=session, args=(second, first)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(errors) == 1
    wrapped = OperationalError(*errors[0].args)
    wrapped.__cause__ = errors[0]
    assert errors[0].args[0] == 1213
    assert driver.ops.is_transient_error(wrapped)


def test_repeatable_read_warns_pollers(backend: Any, db_alias: str) -> None:
    connection = connections[db_alias]
    with connection.cursor() as cursor:
        cursor.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    try:
        task_id = new_id()
        backend.get_task_meta(task_id)  # the first poll of an id never warns
        with pytest.warns(TxIsolationWarning):
            backend.get_task_meta(task_id)
    finally:
        connection.close()  # the next connection is Django's READ COMMITTED again
    with warnings.catch_warnings():
        warnings.simplefilter("error", TxIsolationWarning)
        backend.get_task_meta(task_id)
        backend.get_task_meta(task_id)


@override_settings(DJANGO_CELERY_RESULTS={"MAX_RETRIES": 8, "RETRY_BACKOFF": 0.01})
def test_sessions_killed_during_writes(backend: Any, db_alias: str) -> None:
    """KILL, again and again, while a worker stores 200 lifecycles."""
    settings = connections[db_alias].settings_dict
    database = settings["NAME"]
    stop = threading.Event()
    kills: list[int] = []

    def killer() -> None:
        admin = MySQLdb.connect(
            host=settings["HOST"], port=settings["PORT"], user=settings["USER"], passwd=""
        )
        try:
            cursor = admin.cursor()
            while not stop.wait(0.03):
                cursor.execute(
                    "SELECT id FROM information_schema.processlist "
                    "WHERE db = %s AND id <> CONNECTION_ID()",
                    [database],
                )
                for (session,) in cursor.fetchall():
                    try:
                        cursor.execute(f"KILL {int(session)}")
                        kills.append(session)
                    except MySQLdb.OperationalError:
                        pass  # ended by itself meanwhile
        finally:
            admin.close()  # type: ignore[no-untyped-call]

    thread = threading.Thread(target=killer)
    thread.start()
    ids = [new_id() for _ in range(200)]
    try:
        for task_id in ids:
            backend.mark_as_started(task_id)
            backend.mark_as_done(task_id, task_id)
    finally:
        stop.set()
        thread.join(timeout=10)
        connections[db_alias].close()
    assert kills, "the killer never found a session to kill"
    stored = dict(TaskResult.objects.filter(task_id__in=ids).values_list("task_id", "status"))
    assert stored == dict.fromkeys(ids, states.SUCCESS)
    assert TaskResult.objects.filter(task_id__in=ids).count() == 200


def _now() -> Any:
    time.sleep(0.001)
    return timezone.now()


def test_id_usage_and_its_warning(driver: Any, db_alias: str) -> None:
    table = TaskResult._meta.db_table
    usage = driver.ops.id_usage()
    assert usage.maximum == 2**31 - 1  # upstream's AutoField: int(11)
    assert usage.type.startswith("int")
    driver.ops.store_task_results([row(new_id(), states.SUCCESS)])
    with connections[db_alias].cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} AUTO_INCREMENT = 1500000001")
    try:
        assert driver.ops.id_usage().last == 1_500_000_000
        messages = checks.check_id_range(databases=[db_alias])
        assert [m.id for m in messages] == ["django_celery_results.W003"]
        assert "70% of its int" in messages[0].msg
        err = StringIO()
        call_command("celery_results_stats", stdout=StringIO(), stderr=err)
        assert "70% of its int" in err.getvalue()
    finally:
        with connections[db_alias].cursor() as cursor:
            cursor.execute(f"ALTER TABLE {table} AUTO_INCREMENT = 1")  # back to MAX(id) + 1
    assert checks.check_id_range(databases=[db_alias]) == []


def test_the_row_estimate_is_innodbs(driver: Any, db_alias: str) -> None:
    TaskResult.objects.bulk_create([TaskResult(task_id=new_id()) for _ in range(500)])
    with connections[db_alias].cursor() as cursor:
        cursor.execute(f"ANALYZE TABLE {TaskResult._meta.db_table}")
        cursor.fetchall()
    with CaptureQueriesContext(connections[db_alias]) as queries:
        estimate = driver.ops.estimated_row_count(TaskResult)
    # InnoDB samples pages: near the truth, not exact.
    assert estimate is not None
    assert 250 <= estimate <= 1000
    assert "information_schema.TABLES" in queries.captured_queries[0]["sql"]
