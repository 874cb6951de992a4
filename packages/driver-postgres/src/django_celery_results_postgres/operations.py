"""PostgreSQL's fragments of core's statements: ``AS r`` rows, ``unnest``, ``ctid`` ranges."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from django_celery_results.drivers import IdUsage, RangeWalk, SQLOperations, TaskRow
from django_celery_results.states import TERMINAL_STATES

from .cursors import server_binding_cursor
from .errors import NOT_RETRIED_SQLSTATES, TRANSIENT_SQLSTATES, is_transient
from .listener import Listener

__all__ = ["NOT_RETRIED_SQLSTATES", "TRANSIENT_SQLSTATES", "PostgresOperations"]

if TYPE_CHECKING:
    from django.db.models import Model


class PostgresOperations(SQLOperations):
    """Fragments for PostgreSQL: the stored row named ``r``, arrays, row addresses."""

    #: Far below PostgreSQL's 65,535 bind parameters (18 per row).
    max_rows_per_statement = 1000
    #: Advisory locks, held by the session, within this database.
    session_lock_sql: ClassVar[tuple[str, str] | None] = (
        "SELECT pg_try_advisory_lock(%s)",
        "SELECT pg_advisory_unlock(%s)",
    )
    ids_array_match_sql = "= ANY(%s)"
    array_placeholder = "%b"
    delete_chunk_returns_last = True

    def session_lock_key(self, name: str) -> int:
        """An advisory lock's key: a signed 64-bit number drawn from the name."""
        digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big", signed=True)

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

    def range_walk(self, table: str, condition: str, params: Sequence[Any]) -> RangeWalk | None:
        """The table's pages (``ctid`` ranges), where the planner would scan it whole.

        Pages added meanwhile hold new rows; a row a worker rewrites there is left for the
        next cleanup. Not when few rows match, or the table was never analyzed.
        """
        pages, density = self._pages_and_density(table)
        if density <= 0 or not self._planner_scans(table, condition, params):
            return None
        return RangeWalk("ctid", "%s::tid", 0, pages, 1 / density, bound=_first_tid_of)

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
        """Read psycopg's SQLSTATE (:data:`~.errors.TRANSIENT_SQLSTATES`)."""
        return is_transient(error)

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
        return server_binding_cursor(connection)

    def new_client_cursor(self, connection: Any) -> Any:
        """The cursor :meth:`execute` and :meth:`fetch_one` keep: as :meth:`new_shared_cursor`."""
        return self.new_shared_cursor(connection)


def _first_tid_of(page: int) -> str:
    """The ``tid`` of a page's first row: ``(page,0)``."""
    return f"({page},0)"


def _array_type(column: str) -> str:
    """Return the element type of ``column``'s array in the PENDING ``unnest``."""
    if column in TaskRow.DATE_COLUMNS:
        return "timestamptz"
    return "integer" if column in TaskRow.INTEGER_COLUMNS else "text"
