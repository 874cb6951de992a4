"""The PostgreSQL driver's statements, checked by what they do on a real server."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from io import StringIO
from typing import Any

import psycopg
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
from django_celery_results.models import ChordCounter, TaskResult
from django_celery_results.testing.suite.helpers import new_id, row

CONFORMANCE_ALIASES = ["postgres"]


def statements(alias: str) -> CaptureQueriesContext:
    return CaptureQueriesContext(connections[alias])


def test_a_repeated_id_is_written_in_waves(driver: Any, db_alias: str) -> None:
    first, second = new_id(), new_id()
    rows = [
        row(first, states.STARTED),
        row(second, states.STARTED),
        row(first, states.SUCCESS),
        row(first, states.STARTED),
    ]
    with statements(db_alias) as queries:
        driver.ops.store_task_results(rows)
    assert len(queries.captured_queries) == 3
    assert TaskResult.objects.get(task_id=first).status == states.SUCCESS
    assert TaskResult.objects.get(task_id=second).status == states.STARTED


def test_chord_decrement_returns_the_count(driver: Any, db_alias: str) -> None:
    group_id = new_id()
    driver.ops.create_chord_counter(group_id, "[]", 2)
    with statements(db_alias) as queries:
        assert driver.ops.chord_part_return(group_id) == 1
    assert len(queries.captured_queries) == 1
    assert "RETURNING" in queries.captured_queries[0]["sql"]
    assert driver.ops.chord_part_return(group_id) == 0
    assert driver.ops.chord_part_return(group_id) == 0  # never below zero
    assert ChordCounter.objects.get(group_id=group_id).count == 0
    assert driver.ops.chord_part_return(new_id()) is None


@pytest.fixture
def fixed_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks keep the batch size however long they take (a loaded CI machine)."""
    monkeypatch.setattr(sql, "CHUNK_SECONDS", float("inf"))


@pytest.mark.usefixtures("fixed_chunks")
def test_cleanup_deletes_chunks_by_row_address(driver: Any, db_alias: str) -> None:
    old = timezone.now() - timedelta(days=2)
    ids = [new_id() for _ in range(25)]
    driver.ops.store_task_results(
        [row(i, states.SUCCESS, date_done=old + timedelta(seconds=n)) for n, i in enumerate(ids)]
    )
    keep = new_id()
    driver.ops.store_task_results([row(keep, states.SUCCESS)])
    with connections[db_alias].cursor() as cursor:
        # Where the planner would find the rows by the index, chunks follow the index.
        cursor.execute("SET enable_seqscan = off")
    try:
        with statements(db_alias) as queries:
            deleted = driver.ops.delete_expired(TaskResult, timezone.now() - timedelta(days=1), 10)
    finally:
        with connections[db_alias].cursor() as cursor:
            cursor.execute("RESET enable_seqscan")
    assert deleted == 25
    deletes = [q["sql"] for q in queries.captured_queries if "DELETE FROM" in q["sql"]]
    # 10, 10 and 5 rows, then an empty chunk: past a watermark a short chunk can also
    # mean a worker changed a row meanwhile, so only an empty one ends the loop.
    assert len(deletes) == 4
    assert all("ctid = ANY(ARRAY(SELECT ctid" in sql for sql in deletes)
    # After the first chunk, each starts at the last one's latest date_done: the index
    # entries of rows just deleted (dead until vacuum) are not walked again.
    assert '"date_done" >=' not in deletes[0]
    assert all('"date_done" >=' in sql for sql in deletes[1:])
    assert TaskResult.objects.filter(task_id__in=[*ids, keep]).count() == 1


@pytest.mark.usefixtures("fixed_chunks")
def test_cleanup_walks_page_ranges_where_the_planner_would_scan(
    driver: Any, db_alias: str
) -> None:
    old = timezone.now() - timedelta(days=2)
    ids = [new_id() for _ in range(400)]
    driver.ops.store_task_results([row(i, states.SUCCESS, date_done=old) for i in ids])
    keep = [new_id() for _ in range(5)]
    driver.ops.store_task_results([row(i, states.SUCCESS) for i in keep])
    table = TaskResult._meta.db_table
    with connections[db_alias].cursor() as cursor:
        cursor.execute(f"ANALYZE {table}")  # the planner now knows most rows match
        cursor.execute(f"SELECT relpages, reltuples FROM pg_class WHERE relname = '{table}'")
        pages, tuples = cursor.fetchone()
    assert pages > 2
    with statements(db_alias) as queries:
        deleted = driver.ops.delete_expired(TaskResult, timezone.now() - timedelta(days=1), 50)
    assert deleted == 400
    deletes = [q["sql"] for q in queries.captured_queries if "DELETE FROM" in q["sql"]]
    # About 50 rows' worth of pages per chunk, front to back; the last range is open.
    step = max(1, round(50 / (tuples / pages)))
    assert len(deletes) == -(-pages // step)
    assert all("WHERE ctid >= $1::tid AND " in sql for sql in deletes)
    assert all("AND ctid < $2::tid AND " in sql for sql in deletes[:-1])
    assert "ctid < " not in deletes[-1]
    assert set(TaskResult.objects.values_list("task_id", flat=True)) == set(keep)


def test_cleanup_in_page_ranges_stops_at_until(driver: Any, db_alias: str) -> None:
    old = timezone.now() - timedelta(days=2)
    driver.ops.store_task_results(
        [row(new_id(), states.SUCCESS, date_done=old) for _ in range(300)]
    )
    with connections[db_alias].cursor() as cursor:
        cursor.execute(f"ANALYZE {TaskResult._meta.db_table}")
    cutoff = Q(date_done__lt=timezone.now() - timedelta(days=1))
    first = driver.ops.delete_matching(TaskResult, cutoff, 20, until=0.0)
    assert 0 < first < 300
    assert driver.ops.delete_matching(TaskResult, cutoff, 20) == 300 - first
    assert not TaskResult.objects.exists()


def test_dates_read_as_the_orm_reads_them(driver: Any, db_alias: str) -> None:
    # The driver loads timestamptz through psycopg's C loader, not Django's: same values,
    # same tzinfo object, with and without microseconds.
    done = timezone.now().replace(microsecond=123456)
    started = done.replace(microsecond=0) - timedelta(days=400)
    task_id = new_id()
    driver.ops.store_task_results(
        [row(task_id, states.SUCCESS, date_done=done, date_started=started)]
    )
    ours = driver.ops.get_task_results([task_id])[task_id]
    orm = TaskResult.objects.using(db_alias).get(task_id=task_id)
    for name in ("date_done", "date_started", "date_created"):
        mine, theirs = getattr(ours, name), getattr(orm, name)
        assert mine == theirs, name
        assert mine.tzinfo is theirs.tzinfo, name
    assert ours.date_done == done
    assert ours.date_started == started


def test_many_ids_in_one_array_parameter(driver: Any, db_alias: str) -> None:
    ids = [new_id() for _ in range(2500)]
    driver.ops.store_task_results([row(i, states.SUCCESS) for i in ids])
    with statements(db_alias) as queries:
        found = driver.ops.get_task_results([*ids, "missing"])
    assert len(found) == 2500
    assert len(queries.captured_queries) == 1
    assert "= ANY(" in queries.captured_queries[0]["sql"]
    with statements(db_alias) as queries:
        assert set(driver.ops.get_task_results([ids[0]])) == {ids[0]}
    assert "= ANY(" not in queries.captured_queries[0]["sql"]


@pytest.mark.parametrize(
    ("sqlstate", "transient"),
    [
        ("40001", True),  # serialization_failure
        ("40P01", True),  # deadlock_detected
        ("57P01", True),  # admin_shutdown (pg_terminate_backend)
        ("08006", True),  # connection_failure
        ("23505", False),  # unique_violation
        ("22001", False),  # string_data_right_truncation
        ("57014", False),  # query_canceled: retrying a timed-out query would time out again
    ],
)
def test_transient_sqlstates(driver: Any, sqlstate: str, transient: bool) -> None:
    error = OperationalError("wrapped by Django")
    error.__cause__ = psycopg.errors.lookup(sqlstate)("from the server")
    assert driver.ops.is_transient_error(error) is transient


def test_a_real_statement_timeout_is_not_transient(driver: Any, db_alias: str) -> None:
    with connections[db_alias].cursor() as cursor:
        cursor.execute("SET statement_timeout = 50")
        try:
            with pytest.raises(OperationalError) as raised:
                cursor.execute("SELECT pg_sleep(2)")
        finally:
            cursor.execute("RESET statement_timeout")
    assert not driver.ops.is_transient_error(raised.value)


@override_settings(DJANGO_CELERY_RESULTS={"MAX_RETRIES": 8, "RETRY_BACKOFF": 0.01})
def test_sessions_killed_during_writes(backend: Any, db_alias: str) -> None:
    """pg_terminate_backend, again and again, while a worker stores 200 lifecycles."""
    database = connections[db_alias].settings_dict["NAME"]
    stop = threading.Event()
    kills: list[Any] = []

    def killer() -> None:
        with psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres") as admin:
            admin.autocommit = True
            while not stop.wait(0.03):
                cursor = admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    [database],
                )
                kills.extend(r for (r,) in cursor.fetchall() if r)

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
        # The killer's last round may have ended our idle session: the checks below use
        # the ORM directly, without the backend's retry.
        connections[db_alias].close()
    assert kills, "the killer never found a session to terminate"
    stored = dict(TaskResult.objects.filter(task_id__in=ids).values_list("task_id", "status"))
    assert stored == dict.fromkeys(ids, states.SUCCESS)
    assert TaskResult.objects.filter(task_id__in=ids).count() == 200


def test_id_usage_and_its_warning(driver: Any, db_alias: str) -> None:
    table = TaskResult._meta.db_table
    usage = driver.ops.id_usage()
    assert (usage.type, usage.maximum) == ("integer", 2**31 - 1)  # upstream's AutoField
    with connections[db_alias].cursor() as cursor:
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", [table, 1_500_000_000]
        )
    try:
        usage = driver.ops.id_usage()
        assert usage.last == 1_500_000_000
        messages = checks.check_id_range(databases=[db_alias])
        assert [m.id for m in messages] == ["django_celery_results.W003"]
        assert "70% of its integer range" in messages[0].msg
        assert "bigint" in (messages[0].hint or "")
        out, err = StringIO(), StringIO()
        call_command("celery_results_stats", stdout=out, stderr=err)
        assert "70% of its integer range" in err.getvalue()
        call_command("celery_results_stats", "--format", "json", stdout=(out := StringIO()))
        assert json.loads(out.getvalue())["id_usage"]["last"] == 1_500_000_000
    finally:
        with connections[db_alias].cursor() as cursor:
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence(%s, 'id'), "
                f"(SELECT COALESCE(MAX(id), 0) + 1 FROM {table}), false)",
                [table],
            )
    assert checks.check_id_range(databases=[db_alias]) == []


def test_the_row_estimate_is_the_planners(driver: Any, db_alias: str) -> None:
    TaskResult.objects.bulk_create([TaskResult(task_id=new_id()) for _ in range(500)])
    with connections[db_alias].cursor() as cursor:
        cursor.execute(f"ANALYZE {TaskResult._meta.db_table}")
    with statements(db_alias) as queries:
        assert driver.ops.estimated_row_count(TaskResult) == 500
    assert "COUNT(" not in queries.captured_queries[0]["sql"].upper()
    assert "pg_class" in queries.captured_queries[0]["sql"]
