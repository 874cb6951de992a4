"""Polls and writes on the driver's client cursor: still logged, wrapped, refused as Django's.

``BaseOperations.execute`` and ``fetch_one`` skip Django's cursor wrapper on the hot path;
these tests hold them to what the wrapper would have done.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from celery import states
from django.db import DatabaseError, connections, transaction
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext

from .helpers import new_id

#: What a driver's ``from django_celery_results.testing.suite import *`` takes.
__all__ = ["TestStatements"]


class TestStatements:
    """The kept client cursor behind ``get_task_meta`` and ``store_result``."""

    def test_a_poll_and_a_write_are_logged_while_queries_are(
        self, backend: Any, db_alias: str
    ) -> None:
        task_id = new_id()
        backend.store_result(task_id, None, states.STARTED)
        with CaptureQueriesContext(connections[db_alias]) as queries:
            backend.store_result(task_id, 3, states.SUCCESS)
            assert backend.get_task_meta(task_id, cache=False)["result"] == 3
        statements = [query["sql"] for query in queries.captured_queries]
        assert len(statements) == 2, statements
        assert statements[-1].lstrip().upper().startswith("SELECT")

    def test_an_execute_wrapper_sees_polls_and_writes(self, backend: Any, db_alias: str) -> None:
        seen: list[str] = []

        def wrapper(execute: Callable[..., Any], sql: str, *args: Any) -> Any:
            seen.append(sql)
            return execute(sql, *args)

        task_id = new_id()
        with connections[db_alias].execute_wrapper(wrapper):
            backend.store_result(task_id, 3, states.SUCCESS)
            backend.get_task_meta(task_id, cache=False)
        assert len(seen) >= 2
        assert seen[-1].lstrip().upper().startswith("SELECT")

    def test_a_poll_in_a_broken_transaction_is_refused(self, driver: Any, db_alias: str) -> None:
        with transaction.atomic(using=db_alias):
            transaction.set_rollback(True, using=db_alias)
            with pytest.raises(TransactionManagementError):
                driver.ops.get_task_meta_values(new_id())

    def test_client_errors_are_django_errors(self, driver: Any) -> None:
        table = driver.ops.task_table
        with pytest.raises(DatabaseError) as raised:
            driver.ops.fetch_one(f"SELECT no_such_column FROM {table} WHERE task_id = %s", ["x"])
        assert type(raised.value).__module__.startswith("django.db")
        with pytest.raises(DatabaseError) as raised:
            driver.ops.execute(f"UPDATE {table} SET no_such_column = 1 WHERE task_id = %s", ["x"])
        assert type(raised.value).__module__.startswith("django.db")

    def test_placeholders_and_literal_percent_signs(self, driver: Any, backend: Any) -> None:
        task_id = new_id()
        backend.store_result(task_id, 3, states.SUCCESS)
        table = driver.ops.task_table
        sql = f"SELECT task_id, '5%%' FROM {table} WHERE task_id = %s AND status = %s"
        assert driver.ops.fetch_one(sql, [task_id, states.SUCCESS]) == (task_id, "5%")
        assert driver.ops.fetch_one(sql, [task_id, states.FAILURE]) is None
        changed = driver.ops.execute(
            f"UPDATE {table} SET worker = %s WHERE task_id = %s", ["w@5%", task_id]
        )
        assert changed == 1
        assert driver.ops.fetch_one(
            f"SELECT worker FROM {table} WHERE task_id = %s", [task_id]
        ) == ("w@5%",)

    def test_a_write_in_a_broken_transaction_is_refused(self, driver: Any, db_alias: str) -> None:
        sql = f"UPDATE {driver.ops.task_table} SET worker = %s WHERE task_id = %s"
        with transaction.atomic(using=db_alias):
            transaction.set_rollback(True, using=db_alias)
            with pytest.raises(TransactionManagementError):
                driver.ops.execute(sql, ["w", "x"])

    def test_nothing_watching_a_poll_or_a_statement_skips_djangos_wrapper(
        self, driver: Any, backend: Any, db_alias: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        connection = connections[db_alias]
        task_id = new_id()
        backend.store_result(task_id, 3, states.SUCCESS)
        wrapped: list[object] = []
        prepare = connection._prepare_cursor  # type: ignore[attr-defined]

        def counted(cursor: Any) -> Any:
            wrapped.append(cursor)
            return prepare(cursor)

        monkeypatch.setattr(connection, "_prepare_cursor", counted)
        assert backend.get_task_meta(task_id, cache=False)["result"] == 3
        table = driver.ops.task_table
        sql = f"UPDATE {table} SET worker = %s WHERE task_id = %s"
        assert driver.ops.execute(sql, ["w", task_id]) == 1
        assert wrapped == []
