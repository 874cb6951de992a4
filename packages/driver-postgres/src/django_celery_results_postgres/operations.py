"""PostgreSQL operations: ON CONFLICT upserts, UPDATE … RETURNING, = ANY reads."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import psycopg
from django.db.models import Field
from django.db.utils import InterfaceError

from django_celery_results.drivers import BaseDriver, GenericOperations, TaskRow
from django_celery_results.states import SUCCESS, rank_case_sql

if TYPE_CHECKING:
    from django_celery_results.models import TaskResult

#: Rows per INSERT: far below PostgreSQL's 65,535 bind parameters (15 per row).
MAX_ROWS_PER_STATEMENT = 1000

#: SQLSTATEs after which the same statement can succeed on a fresh attempt: serialization
#: failure, deadlock, admin/crash shutdown, "cannot connect now", and class 08
#: (connection exceptions).
TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "57P01", "57P02", "57P03"})

#: Columns of an inserted row, in statement order.
COLUMNS = (
    "task_id",
    "status",
    "content_type",
    "content_encoding",
    "result",
    "traceback",
    "meta",
    "periodic_task_name",
    "task_name",
    "task_args",
    "task_kwargs",
    "worker",
    "date_created",
    "date_started",
    "date_done",
)


class PostgresOperations(GenericOperations):
    """Operations that use PostgreSQL's upsert, RETURNING and array parameters."""

    def __init__(self, driver: BaseDriver) -> None:
        super().__init__(driver)
        self._fields = [
            field
            for name in COLUMNS
            if isinstance(field := self.TaskResult._meta.get_field(name), Field)
        ]
        self._upsert_sql, self._upsert_params = self._upsert_clause()

    def _upsert_clause(self) -> tuple[str, list[Any]]:
        """Build the ``ON CONFLICT`` part of the upsert: the precedence rule in SQL.

        A stored row is updated only when it is not SUCCESS and its rank is not above the
        new state's. Descriptive columns keep their stored value when the new one is NULL,
        and ``date_started`` keeps the first start. ``r`` is the stored row.
        """
        kept = TaskRow.KEPT_WHEN_NONE
        assignments = [
            f"{col} = COALESCE(EXCLUDED.{col}, r.{col})"
            if col in kept
            else f"{col} = EXCLUDED.{col}"
            for col in COLUMNS
            if col not in ("task_id", "date_created", "date_started")
        ]
        assignments.append("date_started = COALESCE(r.date_started, EXCLUDED.date_started)")
        stored_rank, stored_params = rank_case_sql("r.status")
        new_rank, new_params = rank_case_sql("EXCLUDED.status")
        sql = (
            f"ON CONFLICT (task_id) DO UPDATE SET {', '.join(assignments)} "
            f"WHERE r.status <> %s AND ({stored_rank}) <= ({new_rank})"
        )
        return sql, [SUCCESS, *stored_params, *new_params]

    # -- tasks ---------------------------------------------------------------------------

    def store_task_results(self, rows: Sequence[TaskRow]) -> None:
        """Write all rows with multi-row ``INSERT … ON CONFLICT DO UPDATE … WHERE``.

        PostgreSQL refuses to update one row twice in a statement, so a batch holding the
        same task id twice is written in waves, each id once per wave, in order.
        """
        for wave in _waves(rows):
            for start in range(0, len(wave), MAX_ROWS_PER_STATEMENT):
                self._upsert(wave[start : start + MAX_ROWS_PER_STATEMENT])

    def _upsert(self, rows: Sequence[TaskRow]) -> None:
        connection = self.connection
        table = connection.ops.quote_name(self.TaskResult._meta.db_table)
        row_sql = f"({', '.join(['%s'] * len(COLUMNS))})"
        params: list[Any] = []
        for row in rows:
            values = row.columns()
            params.extend(f.get_db_prep_save(values[f.name], connection) for f in self._fields)
        sql = (
            f"INSERT INTO {table} AS r ({', '.join(COLUMNS)}) "
            f"VALUES {', '.join([row_sql] * len(rows))} {self._upsert_sql}"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [*params, *self._upsert_params])

    def get_task_results(self, task_ids: Sequence[str]) -> dict[str, TaskResult]:
        """Read every id in one query, with the ids as one array parameter."""
        ids = list(dict.fromkeys(task_ids))
        if not ids:
            return {}
        manager = self.TaskResult._default_manager.db_manager(self.alias)
        table = self.connection.ops.quote_name(self.TaskResult._meta.db_table)
        rows = manager.raw(f"SELECT * FROM {table} WHERE task_id = ANY(%s)", [ids])
        return {row.task_id: row for row in rows}

    # -- chords --------------------------------------------------------------------------

    def chord_part_return(self, group_id: str) -> int | None:
        """Decrement and read the counter in one ``UPDATE … RETURNING``."""
        table = self.connection.ops.quote_name(self.ChordCounter._meta.db_table)
        with self.connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET count = count - 1 "
                "WHERE group_id = %s AND count > 0 RETURNING count",
                [group_id],
            )
            row = cursor.fetchone()
            if row is not None:
                return int(row[0])
            # Already at zero (a header task counted twice), or no counter at all.
            cursor.execute(f"SELECT count FROM {table} WHERE group_id = %s", [group_id])
            row = cursor.fetchone()
        return None if row is None else int(row[0])

    # -- errors --------------------------------------------------------------------------

    def is_transient_error(self, exc: BaseException) -> bool:
        """Read psycopg's SQLSTATE: connection loss, deadlocks, serialization failures."""
        if isinstance(exc, InterfaceError):
            return True
        for error in _causes(exc):
            if isinstance(error, psycopg.Error):
                sqlstate = error.sqlstate
                if sqlstate is None:
                    # No server answer at all: the connection broke or was closed.
                    return isinstance(error, psycopg.OperationalError | psycopg.InterfaceError)
                return sqlstate in TRANSIENT_SQLSTATES or sqlstate.startswith("08")
        return super().is_transient_error(exc)


def _waves(rows: Sequence[TaskRow]) -> list[list[TaskRow]]:
    """Split rows so no wave holds a task id twice; a later write lands in a later wave."""
    waves: list[list[TaskRow]] = []
    seen: dict[str, int] = {}
    for row in rows:
        index = seen.get(row.task_id, 0)
        seen[row.task_id] = index + 1
        if index == len(waves):
            waves.append([])
        waves[index].append(row)
    return waves


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """Yield ``exc`` and the exceptions it was raised from (Django wraps psycopg's)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__
