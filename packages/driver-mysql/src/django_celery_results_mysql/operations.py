"""MySQL operations: ON DUPLICATE KEY upserts, LAST_INSERT_ID counters, LIMIT deletes."""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import MySQLdb
from django.conf import settings
from django.db.models import Model
from django.db.models.deletion import Collector
from django.db.utils import InterfaceError
from django.utils import timezone

from django_celery_results.drivers import BaseDriver, GenericOperations, TaskRow, error_chain
from django_celery_results.states import (
    SUCCESS,
    overwritable_sql,
    precedence_class,
    rank_case_literal_sql,
)

from .features import MySQLFeatures

if TYPE_CHECKING:
    pass

#: Rows per INSERT, and the payload bytes after which a batch is cut into another
#: statement: well inside ``max_allowed_packet`` (16 MiB on MariaDB, 64 MiB on MySQL 8).
MAX_ROWS_PER_STATEMENT = 512
MAX_BYTES_PER_STATEMENT = 4 * 1024 * 1024

#: Server and client error codes after which the same statement can succeed on a fresh
#: attempt: deadlock (1213), lock wait timeout (1205), connection killed (1927, MariaDB),
#: server gone away (2006), lost connection (2013), lost connection during a query
#: (2055) and disconnected for inactivity (4031, MySQL 8).
TRANSIENT_CODES = frozenset({1205, 1213, 1927, 2006, 2013, 2055, 4031})

COLUMNS = TaskRow.COLUMNS
#: Where the date columns start in a row's values: ``TaskRow`` puts them last.
FIRST_DATE = len(COLUMNS) - len(TaskRow.DATE_COLUMNS)


class MySQLOperations(GenericOperations):
    """Operations that use MySQL's upsert, ``LAST_INSERT_ID(expr)`` and ``DELETE … LIMIT``."""

    def __init__(self, driver: BaseDriver) -> None:
        super().__init__(driver)
        self._statements: dict[tuple[int, int | str | None], str] = {}
        # Per client connection, forgotten with it: a new connection asks again.
        self._repeatable_read: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()

    @property
    def _row_alias(self) -> bool:
        """Does the server name the new row by an alias (MySQL 8.0.19+)?"""
        features = self.driver.features
        assert isinstance(features, MySQLFeatures)
        return features.supports_insert_row_alias

    def _upsert_clause(self, state: str | None) -> str:
        """Build the ``ON DUPLICATE KEY UPDATE`` part of the upsert: precedence in SQL.

        MySQL has no ``WHERE`` on the update, so every assignment is guarded by the same
        test: ``IF(<stored state may be overwritten>, new, stored)``. MySQL assigns left
        to right and a later assignment sees the earlier ones, so ``status`` is assigned
        last: every test before it reads the stored status, not the new one.

        When every row of the statement brings ``state`` (or a state with the same
        test), the test is written for it; rows of mixed states compare ranks.
        """
        new = self._new_value
        kept = TaskRow.KEPT_WHEN_NONE
        if state is not None:
            test = overwritable_sql(state)
        else:
            test = (
                f"status <> '{SUCCESS}' AND ({rank_case_literal_sql('status')}) "
                f"<= ({rank_case_literal_sql(new('status'))})"
            )
        assignments = []
        for col in COLUMNS:
            if col in ("task_id", "status", "date_created"):
                continue
            if col == "date_started":
                value = f"COALESCE(date_started, {new(col)})"
            elif col in kept:
                value = f"COALESCE({new(col)}, {col})"
            else:
                value = new(col)
            assignments.append(f"{col} = IF({test}, {value}, {col})")
        assignments.append(f"status = IF({test}, {new('status')}, status)")
        return "ON DUPLICATE KEY UPDATE " + ", ".join(assignments)

    def _new_value(self, column: str) -> str:
        """Return how the upsert names the value the new row brings for ``column``."""
        if self._row_alias:
            return f"new.{column}"
        return f"VALUES({column})"

    # -- tasks ---------------------------------------------------------------------------

    def store_task_results(self, rows: Sequence[TaskRow]) -> None:
        """Write all rows with multi-row ``INSERT … ON DUPLICATE KEY UPDATE``.

        MySQL applies a statement's rows in order, each against the row as the previous
        one left it, so a batch may hold the same task id twice.
        """
        for batch in _batches(rows) if len(rows) > 1 else (rows,):
            self._upsert(batch)

    def _params(self, rows: Sequence[TaskRow], connection: Any) -> list[Any]:
        """Return the parameters of ``rows``, dates as Django stores them here (naive text)."""
        adapt = _fast_datetime_adapter(connection)
        params: list[Any] = []
        for row in rows:
            values = row.values()
            params.extend(values[:FIRST_DATE])
            # A row's dates are often one moment (created, started and done at once).
            created, started, done = values[FIRST_DATE:]
            done_text = adapt(done)
            params.append(done_text if created is done else adapt(created))
            params.append(done_text if started is done else adapt(started))
            params.append(done_text)
        return params

    def _upsert(self, rows: Sequence[TaskRow]) -> None:
        connection = self.connection
        params = self._params(rows, connection)
        # One state's test when the rows share it (a lifecycle's writes, a batch of
        # STARTED); the rank comparison otherwise.
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
            table = self.connection.ops.quote_name(self.TaskResult._meta.db_table)
            values = ", ".join([f"({', '.join(['%s'] * len(COLUMNS))})"] * count)
            alias = " AS new" if self._row_alias else ""
            sql = f"INSERT INTO {table} ({', '.join(COLUMNS)}) VALUES {values}{alias} "
            sql += self._upsert_clause(state)
            self._statements[cache_key] = sql
        return sql

    def store_pending_results(self, rows: Sequence[TaskRow]) -> None:
        """One multi-row upsert that only ever moves a stored ``date_created`` earlier."""
        connection = self.connection
        for batch in _pow2_chunks(rows):
            with connection.cursor() as cursor:
                params = self._params(batch, connection)
                cursor.execute(self._pending_statement(len(batch)), params)

    def _pending_statement(self, count: int) -> str:
        """Return the PENDING insert of ``count`` rows (built once per size)."""
        sql = self._statements.get((count, "pending"))
        if sql is None:
            table = self.connection.ops.quote_name(self.TaskResult._meta.db_table)
            values = ", ".join([f"({', '.join(['%s'] * len(COLUMNS))})"] * count)
            alias = " AS new" if self._row_alias else ""
            sql = (
                f"INSERT INTO {table} ({', '.join(COLUMNS)}) VALUES {values}{alias} "
                "ON DUPLICATE KEY UPDATE date_created = "
                f"LEAST(date_created, {self._new_value('date_created')})"
            )
            self._statements[(count, "pending")] = sql
        return sql

    def store_group_result(
        self, group_id: str, content_type: str, content_encoding: str, result: str | None
    ) -> None:
        """Insert or replace the group's row in one ``INSERT … ON DUPLICATE KEY UPDATE``."""
        connection = self.connection
        table = connection.ops.quote_name(self.GroupResult._meta.db_table)
        now = _fast_datetime_adapter(connection)(timezone.now())
        new = self._new_value
        alias = " AS new" if self._row_alias else ""
        columns = ("date_done", "content_type", "content_encoding", "result")
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (group_id, date_created, date_done, content_type, "
                f"content_encoding, result) VALUES (%s, %s, %s, %s, %s, %s){alias} "
                "ON DUPLICATE KEY UPDATE "
                + ", ".join(f"{column} = {new(column)}" for column in columns),
                [group_id, now, now, content_type, content_encoding, result],
            )

    # -- chords --------------------------------------------------------------------------

    def chord_part_return(self, group_id: str) -> int | None:
        """Decrement and read the counter in one statement, through ``LAST_INSERT_ID``.

        ``LAST_INSERT_ID(expr)`` sets the connection's last insert id to ``expr``, which
        the client reads back with the statement's result: no second query, no lock held.
        """
        table = self.connection.ops.quote_name(self.ChordCounter._meta.db_table)
        cursor = self.shared_cursor()
        cursor.execute(
            f"UPDATE {table} SET count = LAST_INSERT_ID(count - 1) "
            "WHERE group_id = %s AND count > 0",
            [group_id],
        )
        if cursor.rowcount > 0:
            return int(cursor.lastrowid)
        # Already at zero (a header task counted twice), or no counter at all.
        cursor.execute(f"SELECT count FROM {table} WHERE group_id = %s", [group_id])
        row = cursor.fetchone()
        return None if row is None else int(row[0])

    # -- cleanup -------------------------------------------------------------------------

    def delete_expired(self, model: type[Model], cutoff: datetime, batch_size: int) -> int:
        """Delete oldest first with ``DELETE … ORDER BY date_done LIMIT n``, one per chunk.

        Each chunk is one statement in autocommit mode, on the ``date_done`` index, so its
        locks last as long as the statement. When the rows cannot be deleted without
        Django (a model points at them, or delete signals are connected), the generic
        driver's ORM deletes run instead.
        """
        manager = model._default_manager.db_manager(self.alias)
        expired = manager.filter(date_done__lt=cutoff)
        if not Collector(using=self.alias).can_fast_delete(expired):
            return super().delete_expired(model, cutoff, batch_size)
        table = self.connection.ops.quote_name(model._meta.db_table)
        sql = f"DELETE FROM {table} WHERE date_done < %s ORDER BY date_done LIMIT %s"
        params = [self.connection.ops.adapt_datetimefield_value(cutoff), batch_size]
        total = 0
        while True:
            with self.connection.cursor() as cursor:
                cursor.execute(sql, params)
                deleted: int = cursor.rowcount
            total += deleted
            if deleted < batch_size:
                return total

    # -- errors --------------------------------------------------------------------------

    def is_transient_error(self, exc: BaseException) -> bool:
        """Read mysqlclient's error code: deadlocks, lock waits and lost connections."""
        if isinstance(exc, InterfaceError):
            return True
        for error in error_chain(exc):
            if isinstance(error, MySQLdb.InterfaceError):
                return True  # the client's connection object is closed
            if isinstance(error, MySQLdb.Error) and error.args:
                return bool(error.args[0] in TRANSIENT_CODES)
        return super().is_transient_error(exc)

    def uses_repeatable_read(self) -> bool:
        """Ask the server for the session's isolation level, once per connection.

        Django connects in READ COMMITTED unless ``OPTIONS["isolation_level"]`` says
        otherwise; the server's own default, REPEATABLE READ, keeps a poller inside a
        transaction reading the snapshot it started with.
        """
        connection = self.connection
        connection.ensure_connection()
        key = connection.connection
        cached = self._repeatable_read.get(key)
        if cached is None:
            with connection.cursor() as cursor:
                # MariaDB calls it tx_isolation, MySQL 8 transaction_isolation.
                cursor.execute(
                    "SHOW VARIABLES WHERE variable_name IN "
                    "('tx_isolation', 'transaction_isolation')"
                )
                levels = {value for _, value in cursor.fetchall()}
            cached = self._repeatable_read[key] = "REPEATABLE-READ" in levels
        return cached


def _fast_datetime_adapter(connection: Any) -> Any:
    """Return Django's ``adapt_datetimefield_value`` for ``connection``, made cheap for UTC.

    Our timestamps are aware UTC datetimes; on a connection in UTC (Django's default with
    ``USE_TZ``), Django's adaptation is ``str()`` of the naive value, which is what this
    does without its checks. Anything else goes through Django.
    """
    adapt = connection.ops.adapt_datetimefield_value
    if not settings.USE_TZ or connection.timezone_name != "UTC":
        return adapt

    def adapt_utc(value: datetime | None) -> str | None:
        if value is None:
            return None
        if value.tzinfo is UTC:
            return str(value.replace(tzinfo=None))
        return adapt(value)  # type: ignore[no-any-return]

    return adapt_utc


def _pow2_chunks(rows: Sequence[TaskRow]) -> Iterator[Sequence[TaskRow]]:
    """Cut rows into chunks whose sizes are powers of two (at most 512), keeping order.

    Statements are built once per row count: this keeps that to ten texts however the
    sends are grouped, at the cost of a few statements more per batch.
    """
    for batch in _batches(rows):
        start = 0
        while start < len(batch):
            size = min(512, 1 << ((len(batch) - start).bit_length() - 1))
            yield batch[start : start + size]
            start += size


def _batches(rows: Sequence[TaskRow]) -> Iterator[Sequence[TaskRow]]:
    """Cut rows into statements of at most the row and payload limits, keeping order."""
    start = 0
    size = 0
    for index, row in enumerate(rows):
        payload = sum(
            len(value)
            for value in (row.result, row.traceback, row.meta, row.task_args, row.task_kwargs)
            if value
        )
        if index > start and (
            index - start >= MAX_ROWS_PER_STATEMENT or size + payload > MAX_BYTES_PER_STATEMENT
        ):
            yield rows[start:index]
            start, size = index, 0
        size += payload
    if start < len(rows):
        yield rows[start:]
