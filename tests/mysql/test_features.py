"""The MySQL driver's features, and the statements MySQL 8's row alias makes them build.

No MySQL 8 server can run on these machines (Debian ships MariaDB): what MariaDB answers
is checked on the real server; MySQL 8.0.19+'s ``AS new`` spelling is checked as the
statements the driver builds, told the server's version. docs/operating.md says so.
"""

from __future__ import annotations

from typing import Any

import pytest
from celery import states
from django.db import connections
from django_celery_results_mysql.driver import MySQLDriver
from django_celery_results_mysql.features import MySQLFeatures

CONFORMANCE_ALIASES = ["mysql"]


def server_says(
    monkeypatch: pytest.MonkeyPatch, alias: str, *, mariadb: bool, version: tuple[int, ...]
) -> None:
    """Make Django's connection report another server (its cached answers, replaced)."""
    connection: Any = connections[alias]
    monkeypatch.setitem(connection.__dict__, "mysql_is_mariadb", mariadb)
    monkeypatch.setitem(connection.__dict__, "mysql_version", version)


def test_mariadb_names_the_new_row_with_values(driver: Any) -> None:
    assert getattr(connections[driver.alias], "mysql_is_mariadb")  # noqa: B009  (this machine's server)
    assert driver.features.supports_insert_row_alias is False
    upsert = driver.ops._task_upsert(1, None, states.SUCCESS)
    assert " AS new " not in upsert
    assert upsert.endswith(", VALUES(status), status)")


@pytest.mark.parametrize(
    ("mariadb", "version", "alias"),
    [
        (False, (8, 0, 19), True),
        (False, (8, 4, 0), True),
        (False, (8, 0, 18), False),
        (False, (5, 7, 44), False),
        (True, (11, 4, 0), False),
    ],
)
def test_the_row_alias_follows_the_server(
    monkeypatch: pytest.MonkeyPatch,
    db_alias: str,
    mariadb: bool,
    version: tuple[int, ...],
    alias: bool,
) -> None:
    server_says(monkeypatch, db_alias, mariadb=mariadb, version=version)
    assert MySQLFeatures(MySQLDriver(db_alias)).supports_insert_row_alias is alias


def mysql_8_driver(monkeypatch: pytest.MonkeyPatch, alias: str) -> MySQLDriver:
    server_says(monkeypatch, alias, mariadb=False, version=(8, 0, 36))
    driver = MySQLDriver(alias)
    assert isinstance(driver.features, MySQLFeatures)
    assert driver.features.supports_insert_row_alias
    return driver


def test_mysql_8_task_upserts_name_the_new_row_new(
    monkeypatch: pytest.MonkeyPatch, db_alias: str
) -> None:
    ops: Any = mysql_8_driver(monkeypatch, db_alias).ops
    for count, key, state in ((1, 4, states.SUCCESS), (3, None, states.STARTED)):
        upsert = ops._task_upsert(count, key, state)
        head, _, update = upsert.partition(" ON DUPLICATE KEY UPDATE ")
        assert head.endswith(") AS new"), head
        assert head.count("(%s") == count
        assert "VALUES(" not in update
        # Every assignment reads the new row by the alias; status is assigned last.
        assert update.index("status = IF(") > update.index("result = IF(")
        assert "new.status" in update
        assert "new.result" in update
        assert "COALESCE(new.task_name, task_name)" in update


def test_mysql_8_pending_upsert_names_the_new_row_new(
    monkeypatch: pytest.MonkeyPatch, db_alias: str
) -> None:
    ops: Any = mysql_8_driver(monkeypatch, db_alias).ops
    upsert = ops._pending_upsert(2, None)
    assert ") AS new ON DUPLICATE KEY UPDATE " in upsert
    assert "VALUES(" not in upsert.split(" ON DUPLICATE KEY UPDATE ")[1]
    assert "new.date_created" in upsert


def test_mysql_8_fragments(monkeypatch: pytest.MonkeyPatch, db_alias: str) -> None:
    ops: Any = mysql_8_driver(monkeypatch, db_alias).ops
    assert ops.new_value_sql("status") == "new.status"
    assert ops.values_sql(1, 2).endswith(" AS new")
    monkeypatch.undo()  # the real server again: MariaDB
    mariadb: Any = MySQLDriver(db_alias).ops
    assert mariadb.new_value_sql("status") == "VALUES(status)"
    assert not mariadb.values_sql(1, 2).endswith(" AS new")
