"""The generic driver's features and members, on every database it may serve."""

from __future__ import annotations

from typing import Any

from django.db import connections

from django_celery_results.drivers import BaseOperations, GenericDriver, GenericOperations


def test_a_plain_client_cursor_runs_on_django_s_sqlite_backend_only(db_alias: str) -> None:
    features = GenericDriver(db_alias).features
    sqlite = connections[db_alias].vendor == "sqlite"
    assert features.can_run_plain_client_cursor is sqlite


def test_statements_are_converted_to_the_plain_cursor_s_marks_once(db_alias: str) -> None:
    ops: Any = GenericDriver(db_alias).ops
    sql = "SELECT %s, '%%s', %s"
    ops.fetch_one(sql, [1, 2])
    converted = ops._client_sql[sql]
    if ops.driver.features.can_run_plain_client_cursor:
        assert converted == "SELECT ?, '%s', ?"
    else:
        assert converted == sql


def test_forgotten_cursors_are_opened_again(db_alias: str) -> None:
    ops: Any = GenericDriver(db_alias).ops
    ops.execute("SELECT 1", [])
    connection = connections[db_alias]
    kept = ops._client_cursors[connection][1]
    ops.forget_cursors()
    ops.execute("SELECT 1", [])
    assert ops._client_cursors[connection][1] is not kept


def test_the_contract_is_what_the_generic_operations_implement() -> None:
    """Every operation and member the contract names, the ORM implementation has."""
    contract = {
        name
        for name in vars(BaseOperations)
        if not name.startswith("_") and name not in {"TaskResult", "GroupResult"}
    }
    assert contract
    missing = {name for name in contract if not hasattr(GenericOperations, name)}
    assert missing == set()
