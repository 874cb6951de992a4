"""PostgreSQL's fragments of core's statements: ``AS r`` rows, ``unnest``, ``ctid``, SQLSTATEs."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Sequence
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.adapt import Loader

from django_celery_results.drivers import ChunkSize, IdUsage, SQLOperations, TaskRow
from django_celery_results.states import SUCCESS, TERMINAL_STATES
from django_celery_results.stats import PERCENTILES

from .listener import Listener

if TYPE_CHECKING:
    from django.db.models import Model

    from django_celery_results.stats import TaskStats

#: SQLSTATEs after which the same statement can succeed on a fresh connection, and why
#: (docs/operating.md's table is checked against this). Class 08 is every connection
#: exception; an error with no SQLSTATE at all (refused, reset) is retried too.
TRANSIENT_SQLSTATES: dict[str, str] = {
    "08": "connection exception: refused, reset or lost (class 08)",
    "57P01": "admin_shutdown: the server is stopping, or pg_terminate_backend",
    "57P02": "crash_shutdown: the server restarts after a crash",
    "57P03": "cannot_connect_now: the server is starting",
    "53300": "too_many_connections: the server's or the role's connection limit",
    "55P03": "lock_not_available: lock_timeout ran out while another session held the row",
    "40P01": "deadlock_detected",
    "40001": "serialization_failure",
    "25006": "read_only_sql_transaction: a read-only server (a replica after a failover)",
}
#: Parts of connect-time messages (which carry no SQLSTATE) that no retry changes.
CONNECT_REFUSALS = ("does not exist", "authentication failed", "no pg_hba.conf entry")
#: SQLSTATEs that are not retried, and why (docs/operating.md's table lists them too).
NOT_RETRIED_SQLSTATES: dict[str, str] = {
    "57014": "query_canceled: statement_timeout, or a cancel; it would run as long again",
    "53100": "disk_full: waits for an operator, not a retry",
    "22": "data exception (class 22): a value the column cannot hold",
    "23": "integrity constraint violation (class 23)",
    "42": "syntax error or access rule violation (class 42): a missing table, a privilege",
}

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


class PostgresOperations(SQLOperations):
    """Fragments for PostgreSQL: the stored row named ``r``, arrays, row addresses."""

    #: Far below PostgreSQL's 65,535 bind parameters (17 per row).
    max_rows_per_statement = 1000
    ids_array_match_sql = "= ANY(%s)"
    delete_chunk_returns_last = True

    def insert_into_sql(self, table: str) -> str:
        """``INSERT INTO t AS r``: the conflict clause names the stored row ``r``."""
        return f"INSERT INTO {table} AS r"

    def update_sql(self, table: str) -> str:
        """``UPDATE t AS r``, so the statement reads the stored row as the upsert does."""
        return f"UPDATE {table} AS r"

    def stored_value_sql(self, column: str) -> str:
        """``r.column`` (a bare name would be ambiguous with ``EXCLUDED``'s)."""
        return f"r.{column}"

    def rows_from_arrays_sql(self) -> str:
        """``SELECT * FROM unnest(%b::text[], …)``: one array per column, typed."""
        arrays = ", ".join(f"%b::{_array_type(column)}[]" for column in TaskRow.COLUMNS)
        return f"SELECT * FROM unnest({arrays})"

    def delete_chunk_sql(self, table: str, condition: str) -> str:
        """Address the chunk's rows by ``ctid``, fetched as one array; return the count.

        ``id IN (SELECT … LIMIT n)`` makes PostgreSQL hash-join the chunk against a scan
        of the whole table, once per chunk. A row a worker updates meanwhile has moved,
        so it is not deleted. The statement returns how many rows it deleted and their
        latest ``date_done``, where the next chunk starts.
        """
        return (
            f"WITH deleted AS (DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid "
            f"FROM {table} WHERE {condition} ORDER BY date_done LIMIT %s)) "
            "RETURNING date_done) SELECT count(*), max(date_done) FROM deleted"
        )

    def announce_sql(self, upsert: str) -> str:
        """``WITH written AS (<upsert> RETURNING …) SELECT pg_notify(…) …``: one statement.

        The notice carries the task id (rows outgrow NOTIFY's 8,000 bytes) and is sent
        only for the rows the upsert wrote in a ready state; PostgreSQL delivers it when
        the write commits, so a listener that reads the row then finds it.
        """
        ready = ", ".join(f"'{state}'" for state in sorted(TERMINAL_STATES))
        channel = self.notify_channel().replace("'", "''")
        return (
            f"WITH written AS ({upsert} RETURNING r.task_id, r.status) "
            f"SELECT pg_notify('{channel}', task_id) FROM written WHERE status IN ({ready})"
        )

    def listener(self) -> Listener:
        """A :class:`Listener` of this alias's channel on a connection of its own."""
        params = self.connection.get_connection_params()
        for key in ("context", "cursor_factory", "prepare_threshold"):
            params.pop(key, None)  # Django's adapters and cursors: plain ones suffice
        # So operators can tell it apart in pg_stat_activity.
        params["application_name"] = "django_celery_results listener"
        # A connection that only waits notices a silent network cut by TCP keepalives
        # (then it reconnects and everything waited on is read again): a minute, not hours.
        for key, value in (
            ("keepalives", 1),
            ("keepalives_idle", 30),
            ("keepalives_interval", 10),
            ("keepalives_count", 3),
        ):
            params.setdefault(key, value)
        return Listener(params, self.notify_channel())

    def delete_chunks(
        self, table: str, condition: str, params: Sequence[Any], size: ChunkSize
    ) -> Iterator[int]:
        """Walk the table's pages in ranges when the planner would scan it whole.

        When most of a table expires, one ``DELETE`` reads it front to back (a sequential
        scan) and leaves the indexes to vacuum; chunks found through the ``date_done``
        index visit every row's page twice. So where the planner picks a sequential scan
        for the condition, each chunk is a TID range scan of about ``size.rows`` rows'
        worth of pages (``ctid >= '(a,0)' AND ctid < '(b,0)'``), front to back, the same
        work as that one ``DELETE`` in short transactions. Pages added meanwhile hold new
        rows; a row a worker rewrites there is left for the next cleanup. Otherwise (few
        rows match, or the table was never analyzed) the index chunks run.
        """
        pages, density = self._pages_and_density(table)
        if density <= 0 or not self._planner_scans(table, condition, params):
            yield from super().delete_chunks(table, condition, params, size)
            return
        start = 0
        while start < pages:
            end = start + max(1, round(size.rows / density))
            # The last range is open: a page added since counting is not skipped.
            upper = "AND ctid < %s::tid " if end < pages else ""
            bounds = [f"({start},0)", f"({end},0)"] if end < pages else [f"({start},0)"]
            with self.cursor() as cursor:
                cursor.execute(
                    f"DELETE FROM {table} WHERE ctid >= %s::tid {upper}AND ({condition})",
                    [*bounds, *params],
                )
                deleted = cursor.rowcount
            yield deleted
            start = end

    def _pages_and_density(self, table: str) -> tuple[int, float]:
        """The table's pages now, and its rows per page by the last ``ANALYZE`` (or 0)."""
        with self.cursor() as cursor:
            cursor.execute(
                "SELECT pg_relation_size(c.oid) / current_setting('block_size')::int, "
                "CASE WHEN c.relpages > 0 AND c.reltuples > 0 "
                "THEN c.reltuples / c.relpages ELSE 0 END "
                "FROM pg_class c WHERE c.oid = %s::regclass",
                [table],
            )
            pages, density = cursor.fetchone()
        return int(pages), float(density)

    def estimated_row_count(self, model: type[Model]) -> int | None:
        """The planner's estimate: rows per page at the last ``ANALYZE`` times pages now."""
        table = self.connection.ops.quote_name(model._meta.db_table)
        pages, density = self._pages_and_density(table)
        return round(pages * density) if density else None

    def _planner_scans(self, table: str, condition: str, params: Sequence[Any]) -> bool:
        """Would PostgreSQL read the whole table (a sequential scan) to find the rows?"""
        with self.cursor() as cursor:
            cursor.execute(
                f"EXPLAIN (FORMAT JSON) SELECT ctid FROM {table} WHERE {condition}", params
            )
            (explained,) = cursor.fetchone()
        # Django loads JSON as text (its JSONField decodes); plain psycopg decodes it.
        plan = (json.loads(explained) if isinstance(explained, str) else explained)[0]["Plan"]
        while plan.get("Node Type") == "Gather":  # a parallel scan under its gatherer
            plan = plan["Plans"][0]
        return "Seq Scan" in str(plan.get("Node Type"))

    def id_usage(self) -> IdUsage | None:
        """The ``id`` sequence's last value, against its column type's and its own maximum."""
        table = self.task_table
        with self.cursor() as cursor:
            cursor.execute(
                "SELECT COALESCE(s.last_value, 0), s.max_value, "
                "format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
                "JOIN pg_sequences s ON (quote_ident(s.schemaname) || '.' || "
                "quote_ident(s.sequencename))::regclass = "
                "pg_get_serial_sequence(%s, 'id')::regclass "
                "WHERE a.attrelid = %s::regclass AND a.attname = 'id'",
                [table, table],
            )
            found = cursor.fetchone()
        if found is None:  # the id is not drawn from a sequence
            return None
        last, limit, column_type = found
        return IdUsage.of_type(int(last), column_type, int(limit))

    def client_error_is_transient(self, error: BaseException) -> bool | None:
        """Read psycopg's SQLSTATE (:data:`TRANSIENT_SQLSTATES`)."""
        if not isinstance(error, psycopg.Error):
            return None
        sqlstate = error.sqlstate
        if sqlstate is None:
            # No SQLSTATE: the connection broke or was closed, or connecting failed (psycopg
            # gives none at connect time, even for a server's FATAL such as "too many
            # connections"). A database or role that does not exist stays so.
            if not isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
                return False
            message = str(error)
            return not any(refusal in message for refusal in CONNECT_REFUSALS)
        return sqlstate in TRANSIENT_SQLSTATES or sqlstate[:2] in TRANSIENT_SQLSTATES

    # -- cursors -------------------------------------------------------------------------

    def cursor(self) -> Any:
        """A Django cursor that binds parameters on the server.

        Django's default cursor interpolates parameters on the client, which rules out
        prepared statements. Ours send them apart, so with ``OPTIONS["prepare_threshold"]``
        set, PostgreSQL plans each of our few statements once per connection. Django's
        wrapper is kept: errors become ``django.db`` errors and queries are logged.
        """
        connection = self.connection
        connection.ensure_connection()
        # Wrapped as Django wraps its own cursors (see BaseOperations.shared_cursor).
        return connection._prepare_cursor(  # type: ignore[attr-defined]
            self.new_shared_cursor(connection)
        )

    def new_shared_cursor(self, connection: Any) -> Any:
        """A psycopg cursor that binds parameters on the server and loads dates in C.

        Every cursor of this driver, kept (:meth:`shared_cursor`) or not (:meth:`cursor`).
        """
        cursor = psycopg.Cursor(connection.connection)
        zone = connection.timezone
        # psycopg's loader gives the session's zone: when that is already Django's (UTC,
        # the usual case), it is registered as it is, without a Python step per value.
        native = _TIMESTAMPTZ_LOADER
        assert native is not None  # psycopg always has one
        loaded = native(_TIMESTAMPTZ_OID, cursor).load(b"2000-01-01 00:00:00+00")
        loader = native if loaded.tzinfo is zone else _timestamptz_loader(zone)
        cursor.adapters.register_loader(_TIMESTAMPTZ_OID, loader)
        return cursor

    def new_client_cursor(self, connection: Any) -> Any:
        """The cursor :meth:`execute` and :meth:`fetch_one` keep: as :meth:`new_shared_cursor`."""
        return self.new_shared_cursor(connection)

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
        table = self.task_table
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


def _array_type(column: str) -> str:
    """Return the element type of ``column``'s array in the PENDING ``unnest``."""
    if column in TaskRow.DATE_COLUMNS:
        return "timestamptz"
    return "integer" if column in TaskRow.INTEGER_COLUMNS else "text"
