"""MySQL's fragments of core's statements: ``IF()`` guards, ``LAST_INSERT_ID``, ``LIMIT``."""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import MySQLdb
from django.conf import settings

from django_celery_results.drivers import BaseDriver, ChunkSize, IdUsage, SQLOperations, TaskRow

from .features import MySQLFeatures

if TYPE_CHECKING:
    from django.db.models import Model

#: Rows per INSERT, and the payload bytes after which a batch is cut into another
#: statement: well inside ``max_allowed_packet`` (16 MiB on MariaDB, 64 MiB on MySQL 8).
MAX_ROWS_PER_STATEMENT = 512
MAX_BYTES_PER_STATEMENT = 4 * 1024 * 1024

#: Server and client error codes after which the same statement can succeed on a fresh
#: connection, and why (docs/operating.md's table is checked against this).
TRANSIENT_CODES: dict[int, str] = {
    2002: "can't connect through the socket: the server is down or restarting",
    2003: "can't connect to the server: refused, the server is down or restarting",
    2006: "server has gone away",
    2013: "lost connection during a query",
    2055: "lost connection at reading (MySQL)",
    4031: "disconnected by the server for inactivity (MySQL 8)",
    1927: "connection killed (MariaDB: KILL, or the server shutting down)",
    1053: "server shutdown in progress",
    1040: "too many connections (max_connections)",
    1203: "the user has more than max_user_connections active connections",
    1226: "the user exceeded a resource limit (MAX_USER_CONNECTIONS and friends)",
    1205: "lock wait timeout exceeded (innodb_lock_wait_timeout)",
    1213: "deadlock found",
    1020: "record has changed since last read (MariaDB's snapshot isolation)",
    1290: "the server runs with --read-only (a replica after a failover)",
    1792: "cannot execute in a read-only transaction",
    1836: "running in read-only mode",
}
#: Error codes that are not retried, and why (docs/operating.md's table lists them too).
NOT_RETRIED_CODES: dict[int, str] = {
    1045: "access denied: a wrong user or password",
    1049: "unknown database",
    1406: "data too long for a column: a value the column cannot hold",
    1062: "duplicate entry",
    1146: "table doesn't exist: not migrated",
    1142: "command denied: a missing privilege",
    3024: "max_execution_time exceeded (MySQL 8): it would run as long again",
    1969: "max_statement_time exceeded (MariaDB): it would run as long again",
}

#: Where the date columns start in a row's values: ``TaskRow`` puts them last.
FIRST_DATE = len(TaskRow.COLUMNS) - len(TaskRow.DATE_COLUMNS)


class MySQLOperations(SQLOperations):
    """Fragments for MySQL and MariaDB: guarded assignments, the new row's name, codes."""

    max_rows_per_statement = MAX_ROWS_PER_STATEMENT

    def __init__(self, driver: BaseDriver) -> None:
        super().__init__(driver)
        # Per client connection, forgotten with it: a new connection asks again.
        self._repeatable_read: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()

    @property
    def _row_alias(self) -> bool:
        """Does the server name the new row by an alias (MySQL 8.0.19+)?"""
        features = self.driver.features
        assert isinstance(features, MySQLFeatures)
        return features.supports_insert_row_alias

    def values_sql(self, count: int, width: int) -> str:
        """The rows, then ``AS new`` where the server names the new row by an alias."""
        return super().values_sql(count, width) + (" AS new" if self._row_alias else "")

    def new_value_sql(self, column: str) -> str:
        """``new.column`` on MySQL 8.0.19+, ``VALUES(column)`` on MariaDB and older MySQL."""
        return f"new.{column}" if self._row_alias else f"VALUES({column})"

    def upsert_sql(
        self, key: str, assignments: Sequence[tuple[str, str]], test: str | None
    ) -> str:
        """``ON DUPLICATE KEY UPDATE col = IF(test, new, col), …``: the test guards each one.

        MySQL has no ``WHERE`` on the update. It assigns left to right and a later
        assignment sees the earlier ones, which is why core assigns ``status`` last.
        """
        if test is None:
            sets = (f"{column} = {value}" for column, value in assignments)
        else:
            sets = (f"{column} = IF({test}, {value}, {column})" for column, value in assignments)
        return "ON DUPLICATE KEY UPDATE " + ", ".join(sets)

    def task_row_chunks(self, rows: Sequence[TaskRow]) -> Iterable[Sequence[TaskRow]]:
        """Cut by rows and payload bytes; one id twice in a statement is applied in order.

        MySQL applies a statement's rows in order, each against the row as the previous
        one left it.
        """
        return (rows,) if len(rows) == 1 else _batches(rows)

    def pending_row_chunks(self, rows: Sequence[TaskRow]) -> Iterable[Sequence[TaskRow]]:
        """Chunks of powers of two: ten statement texts however the sends are grouped."""
        return _pow2_chunks(rows)

    def task_row_params(self, rows: Sequence[TaskRow]) -> list[Any]:
        """The values, dates as Django stores them here (naive text), adapted cheaply."""
        adapt = _fast_datetime_adapter(self.connection)
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

    def adapt_datetime(self, value: datetime) -> Any:
        """Naive text in the connection's time zone, as Django stores dates on MySQL."""
        return _fast_datetime_adapter(self.connection)(value)

    def decrement_chord_counter(self, cursor: Any, group_id: str) -> int | None:
        """``SET count = LAST_INSERT_ID(count - 1)``: the client reads the new count back.

        ``LAST_INSERT_ID(expr)`` sets the connection's last insert id to ``expr``, which
        comes back with the statement's result: no second query, no lock held.
        """
        cursor.execute(
            f"UPDATE {self.chord_counter_table} SET count = LAST_INSERT_ID(count - 1) "
            "WHERE group_id = %s AND count > 0",
            [group_id],
        )
        return int(cursor.lastrowid) if cursor.rowcount > 0 else None

    def delete_chunk_sql(self, table: str, condition: str) -> str:
        """``DELETE … ORDER BY date_done LIMIT n`` on the ``date_done`` index."""
        return f"DELETE FROM {table} WHERE {condition} ORDER BY date_done LIMIT %s"

    def delete_chunk(
        self, cursor: Any, table: str, condition: str, params: Sequence[Any], batch_size: int
    ) -> tuple[int, Any]:
        """Find the chunk's latest ``date_done`` first, then delete up to it.

        MySQL has no ``DELETE … RETURNING``; the boundary comes from the ``date_done``
        index (``LIMIT 1 OFFSET n - 1``), and is where the next chunk starts, so no chunk
        walks again over the index entries of rows deleted but not purged yet.
        """
        cursor.execute(
            f"SELECT date_done FROM {table} WHERE {condition} ORDER BY date_done "
            "LIMIT 1 OFFSET %s",
            [*params, batch_size - 1],
        )
        found = cursor.fetchone()
        if found is None:  # less than a chunk left
            return super().delete_chunk(cursor, table, condition, params, batch_size)
        last = found[0]
        upto = f"{condition} AND {table}.date_done <= %s"
        cursor.execute(self.delete_chunk_sql(table, upto), [*params, last, batch_size])
        return cursor.rowcount, last

    def delete_chunks(
        self, table: str, condition: str, params: Sequence[Any], size: ChunkSize
    ) -> Iterator[int]:
        """Walk the clustered index in ``id`` ranges when the optimizer would scan it all.

        InnoDB stores rows in primary key order. When most of a table expires, one
        ``DELETE`` reads it that way (a full scan, ``type = ALL``); chunks found through
        the ``date_done`` index read every row's page through a second lookup. So where
        the optimizer picks the full scan, each chunk is a primary key range of about
        ``size.rows`` rows (``id >= a AND id < b``, the width from the table's ids per
        row, by the optimizer's estimate), front to back; the last range is open, so rows
        added meanwhile are seen. Otherwise (few rows match) the index chunks run.
        """
        rows = self._full_scan_rows(table, condition, params)
        low, high = self._id_span(table) if rows else (None, None)
        if low is None or high is None or not rows:
            yield from super().delete_chunks(table, condition, params, size)
            return
        ids_per_row = max(1.0, (high - low + 1) / rows)
        pk = self.connection.ops.quote_name("id")
        start = low
        while start <= high:
            end = start + max(1, round(size.rows * ids_per_row))
            upper = f"AND {pk} < %s " if end <= high else ""
            bounds = [start, end] if end <= high else [start]
            with self.cursor() as cursor:
                cursor.execute(
                    f"DELETE FROM {table} WHERE {pk} >= %s {upper}AND ({condition})",
                    [*bounds, *params],
                )
                deleted = cursor.rowcount
            yield deleted
            start = end

    def _full_scan_rows(self, table: str, condition: str, params: Sequence[Any]) -> int:
        """The table's rows by the optimizer if its DELETE would read it all (``ALL``), or 0."""
        with self.cursor() as cursor:
            cursor.execute(f"EXPLAIN DELETE FROM {table} WHERE {condition}", params)
            names = [column[0].lower() for column in cursor.description]
            plan = cursor.fetchone()
        # MySQL 8 can be set to explain as JSON or a tree (explain_format): index chunks.
        if plan is None or "type" not in names or plan[names.index("type")] != "ALL":
            return 0
        return int(plan[names.index("rows")] or 0)

    def _id_span(self, table: str) -> tuple[int | None, int | None]:
        """The table's lowest and highest ``id``, read at the ends of the primary key."""
        pk = self.connection.ops.quote_name("id")
        with self.cursor() as cursor:
            cursor.execute(f"SELECT MIN({pk}), MAX({pk}) FROM {table}")
            low, high = cursor.fetchone()
        return low, high

    def estimated_row_count(self, model: type[Model]) -> int | None:
        """InnoDB's estimate, ``information_schema.TABLES.TABLE_ROWS`` (sampled, not counted)."""
        with self.cursor() as cursor:
            cursor.execute(
                "SELECT TABLE_ROWS FROM information_schema.TABLES "
                "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s",
                [model._meta.db_table],
            )
            found = cursor.fetchone()
        return None if found is None or found[0] is None else int(found[0])

    def id_usage(self) -> IdUsage | None:
        """The table's next ``AUTO_INCREMENT`` (or its highest id), against the id's type.

        MySQL 8 caches ``information_schema``'s ``AUTO_INCREMENT`` for up to a day; the
        highest stored id (the primary key's last entry) is never behind the truth.
        """
        pk = self.connection.ops.quote_name("id")
        with self.cursor() as cursor:
            cursor.execute(
                "SELECT t.AUTO_INCREMENT, c.COLUMN_TYPE FROM information_schema.TABLES t "
                "JOIN information_schema.COLUMNS c ON c.TABLE_SCHEMA = t.TABLE_SCHEMA "
                "AND c.TABLE_NAME = t.TABLE_NAME AND c.COLUMN_NAME = 'id' "
                "WHERE t.TABLE_SCHEMA = DATABASE() AND t.TABLE_NAME = %s",
                [self.TaskResult._meta.db_table],
            )
            found = cursor.fetchone()
            if found is None:
                return None
            cursor.execute(f"SELECT MAX({pk}) FROM {self.task_table}")
            (highest,) = cursor.fetchone()
        following, column_type = found
        last = max(int(following or 1) - 1, int(highest or 0))
        return IdUsage.of_type(last, column_type)

    def client_error_is_transient(self, error: BaseException) -> bool | None:
        """Read mysqlclient's error code (:data:`TRANSIENT_CODES`)."""
        if isinstance(error, MySQLdb.InterfaceError):
            return True  # the client's connection object is closed
        if isinstance(error, MySQLdb.Error) and error.args:
            return bool(error.args[0] in TRANSIENT_CODES)
        return None

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
