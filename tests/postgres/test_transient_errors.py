"""Each PostgreSQL error class, produced on the real server, retried or not as documented."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from celery import states
from django.db import connections
from django.test import override_settings

from django_celery_results.testing.suite.helpers import new_id, status_of

CONFORMANCE_ALIASES = ["postgres"]
QUICK = {"DJANGO_CELERY_RESULTS": {"RETRY_BACKOFF": 0.05, "MAX_RETRIES": 5}}


def raw(alias: str, **options: Any) -> psycopg.Connection[Any]:
    """A connection of our own to the alias's test database, outside Django."""
    settings = connections[alias].settings_dict
    values = {
        "host": settings["HOST"],
        "port": settings["PORT"],
        "user": settings["USER"],
        "dbname": settings["NAME"],
        "autocommit": True,
    }
    return psycopg.connect(**{**values, **options})


def raised(action: Callable[[], object]) -> BaseException:
    with pytest.raises(psycopg.Error) as caught:
        action()
    return caught.value


@pytest.fixture
def limited_role(db_alias: str) -> Iterator[str]:
    """A role of the test's own that may hold one connection (superusers ignore limits)."""
    name = f"dcr_limited_{uuid.uuid4().hex[:8]}"
    with raw(db_alias) as admin:
        admin.execute(f"CREATE ROLE {name} LOGIN CONNECTION LIMIT 1")
    try:
        yield name
    finally:
        with raw(db_alias) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                [name],
            )
            admin.execute(f"DROP ROLE {name}")


def test_connection_refused_is_retried(driver: Any, db_alias: str) -> None:
    error = raised(lambda: raw(db_alias, port=1, connect_timeout=3))
    assert driver.ops.is_transient_error(error)


def test_a_killed_connection_is_retried(driver: Any, db_alias: str) -> None:
    victim = raw(db_alias)
    with raw(db_alias) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [victim.info.backend_pid])
    first = raised(lambda: victim.execute("SELECT 1"))  # 57P01 admin_shutdown
    assert getattr(first, "sqlstate", None) == "57P01"
    assert driver.ops.is_transient_error(first)
    assert driver.ops.is_transient_error(raised(lambda: victim.execute("SELECT 1")))


def test_too_many_connections_is_retried(driver: Any, db_alias: str, limited_role: str) -> None:
    with raw(db_alias, user=limited_role):
        error = raised(lambda: raw(db_alias, user=limited_role))
    assert "too many connections" in str(error)
    assert driver.ops.is_transient_error(error)


def test_an_unknown_database_or_role_is_not_retried(driver: Any, db_alias: str) -> None:
    assert not driver.ops.is_transient_error(raised(lambda: raw(db_alias, dbname="dcr_none")))
    assert not driver.ops.is_transient_error(raised(lambda: raw(db_alias, user="dcr_nobody")))


def test_lock_timeout_is_retried_and_the_result_stored(backend: Any, db_alias: str) -> None:
    """A task finished while another session held its row: stored once the lock goes."""
    task_id = new_id()
    backend.mark_as_started(task_id)
    holder = raw(db_alias, autocommit=False)
    holder.execute(
        "SELECT 1 FROM django_celery_results_taskresult WHERE task_id = %s FOR UPDATE", [task_id]
    )
    with connections[db_alias].cursor() as cursor:
        cursor.execute("SET lock_timeout = '50ms'")
    release = threading.Timer(0.3, holder.rollback)
    release.start()
    try:
        with override_settings(**QUICK):
            backend.mark_as_done(task_id, 1)
    finally:
        release.join()
        holder.close()
    assert status_of(task_id) == states.SUCCESS


def test_lock_not_available_is_retried(driver: Any, db_alias: str) -> None:
    holder, waiter = raw(db_alias, autocommit=False), raw(db_alias)
    try:
        holder.execute("LOCK TABLE django_celery_results_taskresult IN ACCESS EXCLUSIVE MODE")
        waiter.execute("SET lock_timeout = '50ms'")
        error = raised(
            lambda: waiter.execute("SELECT count(*) FROM django_celery_results_taskresult")
        )
    finally:
        holder.rollback()
        holder.close()
        waiter.close()
    assert getattr(error, "sqlstate", None) == "55P03"
    assert driver.ops.is_transient_error(error)


def test_a_serialization_failure_is_retried(driver: Any, db_alias: str) -> None:
    first, second = raw(db_alias, autocommit=False), raw(db_alias, autocommit=False)
    task_id = new_id()
    with raw(db_alias) as setup:
        setup.execute(
            "INSERT INTO django_celery_results_taskresult (task_id, status, content_type, "
            "content_encoding, result, date_done, date_created, meta) "
            "VALUES (%s, 'PENDING', 'application/json', 'utf-8', 'null', now(), now(), '{}')",
            [task_id],
        )
    update = "UPDATE django_celery_results_taskresult SET status = %s WHERE task_id = %s"
    commit = threading.Timer(0.2, first.commit)
    try:
        for connection in (first, second):
            connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            connection.execute("SELECT 1 FROM django_celery_results_taskresult LIMIT 1")
        first.execute(update, ["STARTED", task_id])
        commit.start()
        error = raised(lambda: second.execute(update, ["SUCCESS", task_id]))
    finally:
        # The commit ends before its connection closes: the second session's error can
        # arrive while the first is still reading its commit's answer.
        commit.cancel()  # never started: it never runs
        if commit.ident is not None:
            commit.join()
        first.close()
        second.close()
    assert getattr(error, "sqlstate", None) == "40001"
    assert driver.ops.is_transient_error(error)


def test_a_read_only_server_is_retried(driver: Any, db_alias: str) -> None:
    with raw(db_alias) as connection:
        connection.execute("SET default_transaction_read_only = on")
        error = raised(lambda: connection.execute("CREATE TEMP TABLE t (id int)"))
    assert getattr(error, "sqlstate", None) == "25006"
    assert driver.ops.is_transient_error(error)


def test_a_statement_timeout_is_not_retried(driver: Any, db_alias: str) -> None:
    with raw(db_alias) as connection:
        connection.execute("SET statement_timeout = '10ms'")
        error = raised(lambda: connection.execute("SELECT pg_sleep(1)"))
    assert getattr(error, "sqlstate", None) == "57014"
    assert not driver.ops.is_transient_error(error)
