"""PostgreSQL operations: ON CONFLICT upserts, UPDATE … RETURNING, = ANY reads."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

import psycopg
from django.db.models import Model
from django.db.models.deletion import Collector
from django.db.utils import InterfaceError
from django.utils import timezone
from psycopg.adapt import Loader

from django_celery_results.drivers import BaseDriver, GenericOperations, TaskRow, error_chain
from django_celery_results.states import (
    SUCCESS,
    overwritable_sql,
    precedence_class,
    rank_case_literal_sql,
)
from django_celery_results.stats import PERCENTILES

if TYPE_CHECKING:
    from django_celery_results.models import TaskResult
    from django_celery_results.stats import TaskStats

#: Rows per INSERT: far below PostgreSQL's 65,535 bind parameters (15 per row).
MAX_ROWS_PER_STATEMENT = 1000

#: SQLSTATEs after which the same statement can succeed on a fresh attempt: serialization
#: failure, deadlock, admin/crash shutdown, "cannot connect now", and class 08
#: (connection exceptions).
TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "57P01", "57P02", "57P03"})

COLUMNS = TaskRow.COLUMNS

#: psycopg's own ``timestamptz`` loader: its C version with psycopg[binary] or psycopg[c].
_TIMESTAMPTZ_OID = psycopg.postgres.types["timestamptz"].oid
_TIMESTAMPTZ_LOADER = psycopg.adapters.get_loader(_TIMESTAMPTZ_OID, psycopg.pq.Format.TEXT)


class _TimestamptzLoader(Loader):
    """Load ``timestamptz`` as Django's loader does, through psycopg's faster one.

    Django registers a subclass of psycopg's pure-Python loader (it replaces the time
    zone with the connection's), which parses in Python: a poll reads two dates, and
    that was a tenth of its time. Same values, same ``tzinfo``.
    """

    timezone: tzinfo | None = None

    def __init__(self, oid: int, context: Any = None) -> None:
        super().__init__(oid, context)
        assert _TIMESTAMPTZ_LOADER is not None
        self._load = _TIMESTAMPTZ_LOADER(oid, context).load

    def load(self, data: Any) -> datetime:
        value: datetime = self._load(data)
        return value.replace(tzinfo=self.timezone)


@functools.cache
def _timestamptz_loader(zone: tzinfo | None) -> type[_TimestamptzLoader]:
    """Return the loader class of one Django connection time zone (None: naive values)."""
    return type("TimestamptzLoader", (_TimestamptzLoader,), {"timezone": zone})


class PostgresOperations(GenericOperations):
    """Operations that use PostgreSQL's upsert, RETURNING and array parameters."""

    def __init__(self, driver: BaseDriver) -> None:
        super().__init__(driver)
        self._statements: dict[tuple[int, int | str | None], str] = {}
        self._read_fields = [f.attname for f in self.TaskResult._meta.concrete_fields]
        self._select: str | None = None
        self._assignments = self._upsert_assignments()

    def _upsert_assignments(self) -> str:
        """Build the ``SET`` list of the upsert's ``ON CONFLICT`` part.

        Descriptive columns keep their stored value when the new one is NULL, and
        ``date_started`` keeps the first start. ``r`` is the stored row.
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
        return ", ".join(assignments)

    def _precedence_test(self, state: str | None) -> str:
        """Return the upsert's ``WHERE``: may the stored row ``r`` be overwritten?

        Written for ``state`` when every row of the statement shares its test, as rank
        comparison otherwise. The state names are literals, so a row's 15 values are the
        only parameters.
        """
        if state is not None:
            return overwritable_sql(state, "r.status")
        return (
            f"r.status <> '{SUCCESS}' AND ({rank_case_literal_sql('r.status')}) "
            f"<= ({rank_case_literal_sql('EXCLUDED.status')})"
        )

    def _cursor(self) -> Any:
        """A Django cursor that binds parameters on the server.

        Django's default cursor interpolates parameters on the client, which rules out
        prepared statements. Ours send them apart, so with ``OPTIONS["prepare_threshold"]``
        set, PostgreSQL plans each of our few statements once per connection. Django's
        wrapper is kept: errors become ``django.db`` errors and queries are logged.
        """
        connection = self.connection
        connection.ensure_connection()
        # Wrapped as Django wraps its own cursors (see GenericOperations.shared_cursor).
        return connection._prepare_cursor(  # type: ignore[attr-defined]
            self.new_shared_cursor(connection)
        )

    def new_shared_cursor(self, connection: Any) -> Any:
        """A psycopg cursor that binds parameters on the server and loads dates in C.

        Every cursor of this driver, kept (:meth:`shared_cursor`) or not (:meth:`_cursor`).
        """
        cursor = psycopg.Cursor(connection.connection)
        cursor.adapters.register_loader(_TIMESTAMPTZ_OID, _timestamptz_loader(connection.timezone))
        return cursor

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
        params: list[Any] = []
        for row in rows:
            # Text and aware datetimes go to psycopg as they are: Django's preparation of
            # these fields on PostgreSQL returns them unchanged, so the text is the ORM's.
            params.extend(row.values())
        state: str | None = rows[0].status
        key = precedence_class(rows[0].status)
        if any(precedence_class(row.status) != key for row in rows):
            state = None
        self.shared_cursor().execute(self._upsert_statement(len(rows), state), params)

    def _upsert_statement(self, count: int, state: str | None) -> str:
        """Return the upsert of ``count`` rows (built once per size and test)."""
        # States of one precedence class share the test: key on the class, so the hot
        # path builds no SQL.
        cache_key = (count, None if state is None else precedence_class(state))
        sql = self._statements.get(cache_key)
        if sql is None:
            test = self._precedence_test(state)
            table = self.connection.ops.quote_name(self.TaskResult._meta.db_table)
            values = ", ".join([f"({', '.join(['%s'] * len(COLUMNS))})"] * count)
            sql = (
                f"INSERT INTO {table} AS r ({', '.join(COLUMNS)}) VALUES {values} "
                f"ON CONFLICT (task_id) DO UPDATE SET {self._assignments} WHERE {test}"
            )
            self._statements[cache_key] = sql
        return sql

    def store_pending_results(self, rows: Sequence[TaskRow]) -> None:
        """One upsert from column arrays (``unnest``): one statement text for any count.

        A stored row only has its ``date_created`` moved earlier.
        """
        for wave in _waves(rows):
            columns = list(zip(*(row.values() for row in wave), strict=True))
            with self._cursor() as cursor:
                cursor.execute(self._pending_statement(), [list(c) for c in columns])

    def _pending_statement(self) -> str:
        """Return the PENDING upsert (built once)."""
        sql = self._statements.get((0, "pending"))
        if sql is None:
            table = self.connection.ops.quote_name(self.TaskResult._meta.db_table)
            arrays = ", ".join(
                "%b::timestamptz[]" if column in TaskRow.DATE_COLUMNS else "%b::text[]"
                for column in COLUMNS
            )
            sql = (
                f"INSERT INTO {table} AS r ({', '.join(COLUMNS)}) SELECT * FROM unnest({arrays}) "
                "ON CONFLICT (task_id) DO UPDATE SET date_created = EXCLUDED.date_created "
                "WHERE r.date_created > EXCLUDED.date_created"
            )
            self._statements[(0, "pending")] = sql
        return sql

    def store_group_result(
        self, group_id: str, content_type: str, content_encoding: str, result: str | None
    ) -> None:
        """Insert or replace the group's row in one ``INSERT … ON CONFLICT DO UPDATE``."""
        table = self.connection.ops.quote_name(self.GroupResult._meta.db_table)
        now = timezone.now()
        with self._cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (group_id, date_created, date_done, content_type, "
                "content_encoding, result) VALUES (%s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (group_id) DO UPDATE SET date_done = EXCLUDED.date_done, "
                "content_type = EXCLUDED.content_type, "
                "content_encoding = EXCLUDED.content_encoding, result = EXCLUDED.result",
                [group_id, now, now, content_type, content_encoding, result],
            )

    def get_task_results(self, task_ids: Sequence[str]) -> dict[str, TaskResult]:
        """Read every id in one query: ``= %s`` for one id, one array parameter for many."""
        ids = list(dict.fromkeys(task_ids))
        if not ids:
            return {}
        if self._select is None:
            table = self.connection.ops.quote_name(self.TaskResult._meta.db_table)
            self._select = f"SELECT {', '.join(self._read_fields)} FROM {table} WHERE task_id "
        # A polled single id is the common read; a scalar parameter plans as the unique
        # index lookup it is.
        condition, param = ("= %s", ids[0]) if len(ids) == 1 else ("= ANY(%s)", ids)
        cursor = self.shared_cursor()
        cursor.execute(self._select + condition, [param])
        rows = cursor.fetchall()
        found = (self.TaskResult.from_db(self.alias, self._read_fields, row) for row in rows)
        return {obj.task_id: obj for obj in found}

    # -- chords --------------------------------------------------------------------------

    def chord_part_return(self, group_id: str) -> int | None:
        """Decrement and read the counter in one ``UPDATE … RETURNING``."""
        table = self.connection.ops.quote_name(self.ChordCounter._meta.db_table)
        cursor = self.shared_cursor()
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

    # -- cleanup -------------------------------------------------------------------------

    def delete_expired(self, model: type[Model], cutoff: datetime, batch_size: int) -> int:
        """Delete oldest first, one statement per chunk, addressing rows by ``ctid``.

        ``id IN (SELECT … LIMIT n)`` makes PostgreSQL hash-join the chunk against a scan
        of the whole table, once per chunk; the chunk's row addresses as an array are
        fetched directly. A row a worker updates meanwhile has moved, so it is not
        deleted. When Django must delete (a model points at the rows, or delete signals
        listen), the generic driver's ORM deletes run instead.
        """
        manager = model._default_manager.db_manager(self.alias)
        if not Collector(using=self.alias).can_fast_delete(manager.filter(date_done__lt=cutoff)):
            return super().delete_expired(model, cutoff, batch_size)
        table = self.connection.ops.quote_name(model._meta.db_table)
        sql = (
            f"DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table} "
            "WHERE date_done < %s ORDER BY date_done LIMIT %s))"
        )
        total = 0
        while True:
            with self._cursor() as cursor:
                cursor.execute(sql, [cutoff, batch_size])
                deleted: int = cursor.rowcount
            total += deleted
            if deleted < batch_size:
                return total

    # -- statistics ----------------------------------------------------------------------

    def timeline_stats(
        self, since: datetime, task_names: Sequence[str] | None = None
    ) -> list[TaskStats]:
        """Counts through the ORM; spreads in one query with ``percentile_cont``.

        ``percentile_cont`` interpolates between the two nearest values, where the
        portable computation picks the nearest rank.
        """
        from django_celery_results.stats import Spread, rows_in_window, state_counts

        manager = self.TaskResult._default_manager.db_manager(self.alias)
        stats = state_counts(rows_in_window(manager.all(), since, task_names))
        table = self.connection.ops.quote_name(self.TaskResult._meta.db_table)
        waiting = "EXTRACT(EPOCH FROM date_started - date_created)"
        processing = "EXTRACT(EPOCH FROM date_done - date_started)"
        started = "date_started IS NOT NULL"
        finished = f"{started} AND status IN ('FAILURE', 'REVOKED', '{SUCCESS}')"
        columns = []
        for expression, condition in ((waiting, started), (processing, finished)):
            for fraction in PERCENTILES:
                columns.append(
                    f"percentile_cont({fraction}) WITHIN GROUP (ORDER BY {expression}) "
                    f"FILTER (WHERE {condition})"
                )
            columns.append(f"MAX({expression}) FILTER (WHERE {condition})")
        sql = f"SELECT task_name, {', '.join(columns)} FROM {table} WHERE date_done >= %s"
        params: list[Any] = [since]
        if task_names:
            sql += " AND task_name = ANY(%s)"
            params.append(list(task_names))
        with self.connection.cursor() as cursor:
            cursor.execute(sql + " GROUP BY task_name", params)
            spreads = cursor.fetchall()
        for name, *values in spreads:
            entry = stats.get(name or "")
            if entry is None:
                continue
            numbers = [None if v is None else float(v) for v in values]
            entry.waiting = Spread(*numbers[:3])
            entry.processing = Spread(*numbers[3:])
        return sorted(stats.values(), key=lambda s: s.task_name)

    # -- errors --------------------------------------------------------------------------

    def is_transient_error(self, exc: BaseException) -> bool:
        """Read psycopg's SQLSTATE: connection loss, deadlocks, serialization failures."""
        if isinstance(exc, InterfaceError):
            return True
        for error in error_chain(exc):
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
