"""MySQL's fragments of core's statements: ``IF()`` guards, ``LAST_INSERT_ID``, ``LIMIT``."""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from django.conf import settings

from django_celery_results.drivers import BaseDriver, IdUsage, RangeWalk, SQLOperations, TaskRow

from .chunks import MAX_ROWS_PER_STATEMENT, batches, pow2_chunks
from .errors import NOT_RETRIED_CODES, TRANSIENT_CODES, is_transient
from .features import MySQLFeatures

__all__ = ["NOT_RETRIED_CODES", "TRANSIENT_CODES", "MySQLOperations"]

if TYPE_CHECKING:
    from django.db.models import Model

#: Where the date columns start in a row's values: ``TaskRow`` puts them last.
FIRST_DATE = len(TaskRow.COLUMNS) - len(TaskRow.DATE_COLUMNS)


class MySQLOperations(SQLOperations):
    """Fragments for MySQL and MariaDB: guarded assignments, the new row's name, codes."""

    max_rows_per_statement = MAX_ROWS_PER_STATEMENT
    #: User-level locks, held by the session; their names are server-wide.
    session_lock_sql: ClassVar[tuple[str, str] | None] = (
        "SELECT GET_LOCK(%s, 0)",
        "SELECT RELEASE_LOCK(%s)",
    )

    def session_lock_key(self, name: str) -> str:
        """The lock's name within this database: ``GET_LOCK`` names span the server.

        At most 64 characters (MySQL's limit): a long database name is hashed.
        """
        full = f"{self.connection.settings_dict['NAME']}.{name}"
        return full if len(full) <= 64 else hashlib.sha256(full.encode()).hexdigest()

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
        return (rows,) if len(rows) == 1 else batches(rows)

    def pending_row_chunks(self, rows: Sequence[TaskRow]) -> Iterable[Sequence[TaskRow]]:
        """Chunks of powers of two: ten statement texts however the sends are grouped."""
        return pow2_chunks(rows)

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

    def range_walk(self, table: str, condition: str, params: Sequence[Any]) -> RangeWalk | None:
        """The clustered index in ``id`` ranges, where the optimizer would scan it all.

        InnoDB stores rows in primary key order; the width of a range comes from the
        table's ids per row, by the optimizer's estimate. Not when few rows match.
        """
        rows = self._full_scan_rows(table, condition, params)
        low, high = self._id_span(table) if rows else (None, None)
        if low is None or high is None or not rows:
            return None
        per_row = max(1.0, (high - low + 1) / rows)
        return RangeWalk(self.connection.ops.quote_name("id"), "%s", low, high + 1, per_row)

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
        """Read mysqlclient's error code (:data:`~.errors.TRANSIENT_CODES`)."""
        return is_transient(error)

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
