"""Each MySQL/MariaDB error class, produced on the real server, retried or not as documented."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import MySQLdb
import pytest
from celery import states
from django.db import connections
from django.test import override_settings

from django_celery_results.testing.suite.helpers import new_id, status_of

CONFORMANCE_ALIASES = ["mysql"]
QUICK = {"DJANGO_CELERY_RESULTS": {"RETRY_BACKOFF": 0.05, "MAX_RETRIES": 5}}
TABLE = "django_celery_results_taskresult"


def raw(alias: str, **options: Any) -> Any:
    """A connection of our own to the alias's test database, outside Django."""
    settings = connections[alias].settings_dict
    values = {
        "host": settings["HOST"],
        "port": settings["PORT"],
        "user": settings["USER"],
        "passwd": settings["PASSWORD"],
        "db": settings["NAME"],
        "autocommit": True,
    }
    return MySQLdb.connect(**{**values, **options})


def execute(connection: Any, sql: str, params: list[Any] | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def raised(action: Callable[[], object]) -> BaseException:
    with pytest.raises(MySQLdb.Error) as caught:
        action()
    return caught.value


def code(error: BaseException) -> int:
    return int(error.args[0])


@pytest.fixture
def limited_user(db_alias: str) -> Iterator[str]:
    """A user of the test's own that may hold one connection."""
    name = f"dcr_limited_{uuid.uuid4().hex[:8]}"
    with raw(db_alias) as admin:
        execute(admin, f"CREATE USER '{name}'@'%' IDENTIFIED BY 'pw' WITH MAX_USER_CONNECTIONS 1")
    try:
        yield name
    finally:
        with raw(db_alias) as admin:
            execute(admin, f"DROP USER '{name}'@'%'")


def test_connection_refused_is_retried(driver: Any, db_alias: str) -> None:
    error = raised(lambda: raw(db_alias, port=1, connect_timeout=3))
    assert code(error) in (2002, 2003)
    assert driver.ops.is_transient_error(error)


def test_a_killed_connection_is_retried(driver: Any, db_alias: str) -> None:
    victim = raw(db_alias)
    with raw(db_alias) as admin:
        execute(admin, f"KILL {victim.thread_id()}")
    first = raised(lambda: execute(victim, "SELECT 1"))
    assert code(first) in (2006, 2013, 1927)
    assert driver.ops.is_transient_error(first)
    assert driver.ops.is_transient_error(raised(lambda: execute(victim, "SELECT 1")))


def test_too_many_connections_is_retried(driver: Any, db_alias: str, limited_user: str) -> None:
    options = {"user": limited_user, "passwd": "pw", "db": ""}
    with raw(db_alias, **options):
        error = raised(lambda: raw(db_alias, **options))
    assert code(error) in (1203, 1226)
    assert driver.ops.is_transient_error(error)


def test_an_unknown_database_is_not_retried(driver: Any, db_alias: str) -> None:
    error = raised(lambda: raw(db_alias, db="dcr_none"))
    assert code(error) == 1049
    assert not driver.ops.is_transient_error(error)


def test_lock_wait_timeout_is_retried_and_the_result_stored(backend: Any, db_alias: str) -> None:
    """A task finished while another session held its row: stored once the lock goes."""
    task_id = new_id()
    backend.mark_as_started(task_id)
    holder = raw(db_alias, autocommit=False)
    execute(holder, f"SELECT 1 FROM {TABLE} WHERE task_id = %s FOR UPDATE", [task_id])
    with connections[db_alias].cursor() as cursor:
        cursor.execute("SET SESSION innodb_lock_wait_timeout = 1")
    release = threading.Timer(1.3, holder.rollback)
    release.start()
    try:
        with override_settings(**QUICK):
            backend.mark_as_done(task_id, 1)
    finally:
        release.join()
        holder.close()
    assert status_of(task_id) == states.SUCCESS


def test_a_deadlock_is_retried(driver: Any, db_alias: str) -> None:
    first, second = raw(db_alias, autocommit=False), raw(db_alias, autocommit=False)
    ids = [new_id(), new_id()]
    with raw(db_alias) as setup:
        for task_id in ids:
            execute(
                setup,
                f"INSERT INTO {TABLE} (task_id, status, content_type, content_encoding, result, "
                "date_done, date_created, meta) VALUES (%s, 'PENDING', 'application/json', "
                "'utf-8', 'null', NOW(6), NOW(6), '{}')",
                [task_id],
            )
    update = f"UPDATE {TABLE} SET status = 'STARTED' WHERE task_id = %s"
    errors: list[BaseException] = []

    def cross(connection: Any, one: str, other: str) -> None:
        try:
            execute(connection, update, [one])
            barrier.wait(5)
            execute(connection, update, [other])
        except MySQLdb.Error as exc:
            errors.append(exc)
        finally:
            connection.rollback()

    barrier = threading.Barrier(2)
    threads = [
        threading.Thread(target=cross, args=(first, ids[0], ids[1])),
        threading.Thread(target=cross, args=(second, ids[1], ids[0])),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    first.close()
    second.close()
    assert [code(error) for error in errors] == [1213]
    assert driver.ops.is_transient_error(errors[0])


def test_a_snapshot_conflict_is_retried(driver: Any, db_alias: str) -> None:
    """MariaDB's serialization failure (1020), under innodb_snapshot_isolation."""
    task_id = new_id()
    first, second = raw(db_alias, autocommit=False), raw(db_alias, autocommit=False)
    try:
        execute(
            first,
            f"INSERT INTO {TABLE} (task_id, status, content_type, content_encoding, result, "
            "date_done, date_created, meta) VALUES (%s, 'PENDING', 'application/json', "
            "'utf-8', 'null', NOW(6), NOW(6), '{}')",
            [task_id],
        )
        first.commit()
        for connection in (first, second):
            execute(connection, "SET SESSION innodb_snapshot_isolation = ON")
            execute(connection, "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        execute(second, f"SELECT status FROM {TABLE} WHERE task_id = %s", [task_id])
        execute(first, f"UPDATE {TABLE} SET status = 'STARTED' WHERE task_id = %s", [task_id])
        first.commit()
        update = f"UPDATE {TABLE} SET status = 'SUCCESS' WHERE task_id = %s"
        error = raised(lambda: execute(second, update, [task_id]))
    finally:
        second.rollback()
        first.close()
        second.close()
    assert code(error) == 1020
    assert driver.ops.is_transient_error(error)


def test_a_read_only_transaction_is_retried(driver: Any, db_alias: str) -> None:
    with raw(db_alias) as connection:
        execute(connection, "SET SESSION TRANSACTION READ ONLY")
        error = raised(lambda: execute(connection, f"DELETE FROM {TABLE} WHERE id = -1"))
    assert code(error) == 1792
    assert driver.ops.is_transient_error(error)


def test_a_statement_time_limit_is_not_retried(driver: Any, db_alias: str) -> None:
    with raw(db_alias) as connection:
        execute(connection, "SET SESSION max_statement_time = 0.01")
        error = raised(lambda: execute(connection, "SELECT SLEEP(1), COUNT(*) FROM " + TABLE))
    assert code(error) == 1969
    assert not driver.ops.is_transient_error(error)
