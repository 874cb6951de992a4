"""The fast paths' statements, written once by core; a vendor driver supplies the fragments."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from django.core.exceptions import EmptyResultSet, FullResultSet
from django.db.models import Model, Q
from django.db.models.deletion import Collector
from django.db.utils import InterfaceError
from django.utils import timezone

from ..states import (
    PENDING,
    TERMINAL_STATES,
    overwritable_by_rank_sql,
    overwritable_sql,
    precedence_class,
)
from .base import error_chain
from .generic import GenericOperations
from .rows import TaskRow

if TYPE_CHECKING:
    from ..models import TaskResult

COLUMNS = TaskRow.COLUMNS
#: The column every write clears, so the history's next catch-up counts the row.
ROLLED_UP = "rolled_up"
#: The columns of a group's row, in the order the group upsert writes them.
GROUP_COLUMNS = (
    "group_id",
    "date_created",
    "date_done",
    "content_type",
    "content_encoding",
    "result",
)
#: What a group upsert replaces on a stored group (its ``date_created`` stays).
GROUP_REPLACED = GROUP_COLUMNS[2:]


#: How long one cleanup chunk should hold its transaction, in seconds: chunks that take
#: longer make the next ones smaller (down to :data:`MIN_CHUNK_ROWS`), up to the batch size.
CHUNK_SECONDS = 0.2
MIN_CHUNK_ROWS = 100
#: Unfinished tasks a process remembers having stored (see ``store_task_results``).
REMEMBERED_TASKS = 10_000


@dataclass
class ChunkSize:
    """Rows per cleanup chunk: at most ``limit``, fewer where chunks take too long.

    The batch size alone does not bound a transaction: 10,000 rows take 10 ms on one
    server and half a second on another whose buffer pool is small.
    """

    limit: int
    rows: int = field(init=False)

    def __post_init__(self) -> None:
        self.rows = self.limit

    def took(self, seconds: float) -> None:
        """Aim the next chunk at :data:`CHUNK_SECONDS`, halving or doubling it at most."""
        if seconds <= 0:
            return
        factor = min(2.0, max(0.5, CHUNK_SECONDS / seconds))
        floor = min(self.limit, MIN_CHUNK_ROWS)
        self.rows = max(floor, min(self.limit, round(self.rows * factor)))


@dataclass(frozen=True)
class RangeWalk:
    """How a cleanup walks a table in storage order, a range of a column per chunk.

    A driver returns one from :meth:`SQLOperations.range_walk` where deleting in
    storage order beats the ``date_done`` index: PostgreSQL's pages (``ctid``), InnoDB's
    clustered primary key (``id``). Positions are whole numbers from ``start`` up to
    ``end`` (exclusive, as counted before the walk); ``per_row`` positions hold a row.
    """

    #: The column, quoted, compared with ``mark``: ``ctid``, ```id```.
    column: str
    #: The placeholder of a bound, with any cast: ``%s::tid``, ``%s``.
    mark: str
    start: int
    end: int
    #: Positions per row: pages per row, ids per row.
    per_row: float
    #: A position as the bound's parameter (a page ``n`` is the tid ``(n,0)``).
    bound: Callable[[int], Any] = int


class SQLOperations(GenericOperations):
    """Upserts, counters, reads and cleanup as single statements, with vendor fragments.

    Core owns each statement's shape and meaning (which columns a write replaces, the
    state precedence test, what a conflict keeps); a vendor overrides the fragment
    methods below for what its database spells differently, the way Django's
    ``DatabaseOperations.on_conflict_suffix_sql`` lets the compiler own the ``INSERT``.
    The defaults are PostgreSQL's and SQLite's spelling (``ON CONFLICT … DO UPDATE``,
    ``EXCLUDED``). Statements are built once per row count and precedence class and kept:
    a write builds no SQL.
    """

    #: Rows per multi-row statement: keep ``max_rows_per_statement * len(TaskRow.COLUMNS)``
    #: below the database's limit of bind parameters.
    max_rows_per_statement: ClassVar[int] = 500
    #: The condition that matches ``task_id`` against one array parameter holding many
    #: ids (``"= ANY(%s)"``), or ``None`` to read many ids as ``IN`` lists, chunked.
    ids_array_match_sql: ClassVar[str | None] = None
    #: Does :meth:`delete_chunk_sql` return ``(rows deleted, latest date_done)``?
    delete_chunk_returns_last: ClassVar[bool] = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._statements: dict[tuple[str, int, int | None], str] = {}
        #: Ids of unfinished tasks this process stored a row of: their next write updates.
        self._stored_here: dict[str, None] = {}

    # -- fragments a vendor overrides -----------------------------------------------------

    def insert_into_sql(self, table: str) -> str:
        """Return the head of an upsert into ``table``, naming the stored row if needed."""
        return f"INSERT INTO {table}"

    def values_sql(self, count: int, width: int) -> str:
        """Return the ``VALUES`` part of ``count`` rows of ``width`` parameters each.

        A database that names the new row by an alias (MySQL 8's ``AS new``) adds it here.
        """
        row = f"({', '.join(['%s'] * width)})"
        return "VALUES " + ", ".join([row] * count)

    def update_sql(self, table: str) -> str:
        """Return the head of an ``UPDATE`` of ``table``, naming the stored row if needed."""
        return f"UPDATE {table}"

    def new_value_sql(self, column: str) -> str:
        """Return how an upsert's conflict clause names the new row's ``column``."""
        return f"EXCLUDED.{column}"

    def stored_value_sql(self, column: str) -> str:
        """Return how an upsert's conflict clause names the stored row's ``column``."""
        return column

    def upsert_sql(
        self, key: str, assignments: Sequence[tuple[str, str]], test: str | None
    ) -> str:
        """Return the conflict clause: on a stored ``key``, assign when ``test`` holds.

        ``assignments`` are ``(column, expression)`` pairs in the order they must apply
        (``status`` last, so every expression before it reads the stored state); ``test``
        is the SQL condition under which the stored row may change (``None``: always).
        """
        sets = ", ".join(f"{column} = {value}" for column, value in assignments)
        where = "" if test is None else f" WHERE {test}"
        return f"ON CONFLICT ({key}) DO UPDATE SET {sets}{where}"

    def rows_from_arrays_sql(self) -> str | None:
        """Return a ``SELECT`` turning one array parameter per column into rows, or ``None``.

        With it (PostgreSQL's ``unnest``), PENDING rows go in one statement text whatever
        their count, with one parameter per :attr:`TaskRow.COLUMNS` entry.
        """
        return None

    def task_row_chunks(self, rows: Sequence[TaskRow]) -> Iterable[Sequence[TaskRow]]:
        """Cut rows into statements, keeping their order.

        No chunk holds one task id twice (an upsert may not change a row twice), and none
        holds more than :attr:`max_rows_per_statement` rows.
        """
        if len(rows) == 1:
            return (rows,)
        size = self.max_rows_per_statement
        return [wave[i : i + size] for wave in waves(rows) for i in range(0, len(wave), size)]

    def pending_row_chunks(self, rows: Sequence[TaskRow]) -> Iterable[Sequence[TaskRow]]:
        """Cut PENDING rows into statements (see :meth:`task_row_chunks`)."""
        if self.rows_from_arrays_sql() is not None:
            return waves(rows)  # arrays have no parameter limit
        return self.task_row_chunks(rows)

    def task_row_params(self, rows: Sequence[TaskRow]) -> list[Any]:
        """Return the parameters of rows in :attr:`TaskRow.COLUMNS` order, row after row.

        Text and aware datetimes as they are; a client that wants dates another way
        overrides this (it is every write's hot path).
        """
        if len(rows) == 1:  # a write without batching
            return list(rows[0].values())
        params: list[Any] = []
        for row in rows:
            params.extend(row.values())
        return params

    def adapt_datetime(self, value: datetime) -> Any:
        """Return a datetime as the client library takes it (Django's adaptation)."""
        return self.connection.ops.adapt_datetimefield_value(value)

    def decrement_chord_counter(self, cursor: Any, group_id: str) -> int | None:
        """Decrement a counter above zero in one statement; return its new count.

        Returns ``None`` when no row was decremented (no counter, or one at zero).
        """
        cursor.execute(
            f"UPDATE {self.chord_counter_table} SET count = count - 1 "
            "WHERE group_id = %s AND count > 0 RETURNING count",
            [group_id],
        )
        row = cursor.fetchone()
        return None if row is None else int(row[0])

    def delete_chunk_sql(self, table: str, condition: str) -> str:
        """Return a ``DELETE`` of the ``%s`` oldest rows of ``table`` that match ``condition``.

        ``condition`` is SQL with its own parameters, which come first; the chunk size is
        the last parameter. The default addresses the chunk by primary key. With
        :attr:`delete_chunk_returns_last`, the statement returns one row: how many rows it
        deleted and their latest ``date_done``.
        """
        return (
            f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} "
            f"WHERE {condition} ORDER BY date_done LIMIT %s)"
        )

    def delete_chunk(
        self, cursor: Any, table: str, condition: str, params: Sequence[Any], batch_size: int
    ) -> tuple[int, Any]:
        """Delete one chunk: the ``batch_size`` oldest rows of ``table`` matching ``condition``.

        ``condition`` is SQL with ``params``. Returns the rows deleted and, when the
        database says so (:attr:`delete_chunk_returns_last`), their latest ``date_done``,
        where the next chunk starts; ``None`` otherwise.
        """
        cursor.execute(self.delete_chunk_sql(table, condition), [*params, batch_size])
        if not self.delete_chunk_returns_last:
            return cursor.rowcount, None
        count, last = cursor.fetchone()
        return int(count), last

    def announce_sql(self, upsert: str) -> str:
        """Wrap a task upsert so the statement also notifies listeners of finished tasks.

        Also wraps the guarded ``UPDATE`` of a stored task (``upsert`` is then that
        statement): the wrapped statement must return one row per row written, since a
        ``rowcount`` of 0 is what sends the write on to the upsert. Only drivers whose
        features say ``supports_notify`` are asked; the payload is the task id, on the
        channel :meth:`notify_channel` names.
        """
        raise NotImplementedError("this driver cannot notify listeners")

    def notify_channel(self) -> str:
        """The one channel finished tasks are announced on: the task table's, ``…_ready``.

        A table name too long for a channel (63 bytes) is replaced by its digest.
        """
        table = self.TaskResult._meta.db_table
        channel = f"{table}_ready"
        if len(channel.encode()) > 63:
            channel = f"dcr_{hashlib.sha1(table.encode()).hexdigest()}_ready"
        return channel

    def client_error_is_transient(self, error: BaseException) -> bool | None:
        """Judge one error of a chain by the database client's codes.

        Return ``None`` when ``error`` is not the client's; the chain's first verdict
        decides, and without one the generic message test does.
        """
        return None

    # -- tasks ---------------------------------------------------------------------------

    def store_task_results(self, rows: Sequence[TaskRow]) -> None:
        """Write rows with multi-row upserts whose conflict clause applies precedence.

        A single row whose task is known to be stored (this process wrote its earlier
        state, or ``TRACK_PENDING`` stored it when it was sent) is first written by a
        guarded ``UPDATE`` (:meth:`_update_stored`): an upsert draws a new ``id`` even
        when it updates, which would run a 32-bit id out twice as fast.
        """
        if len(rows) == 1 and self._stored_before(rows[0]) and self._update_stored(rows[0]):
            self._remember(rows[0])
            return
        for chunk in self.task_row_chunks(rows):
            # Rows of one precedence class share a test written for their state (a
            # lifecycle's writes, a batch of STARTED); mixed rows compare ranks.
            key: int | None = precedence_class(chunk[0].status)
            if len(chunk) > 1 and any(precedence_class(row.status) != key for row in chunk):
                key = None
            # With NOTIFY, a write that finishes a task tells waiting clients in the same
            # statement, so the notice arrives exactly when the row is visible.
            kind = "task"
            if self.driver.notify and any(row.status in TERMINAL_STATES for row in chunk):
                kind = "announced task"
            sql = self._statements.get((kind, len(chunk), key))
            if sql is None:
                sql = self._task_upsert(len(chunk), key, chunk[0].status)
                if kind != "task":
                    sql = self._statements[(kind, len(chunk), key)] = self.announce_sql(sql)
            self.execute(sql, self.task_row_params(chunk))
        if len(rows) == 1:
            self._remember(rows[0])

    def _stored_before(self, row: TaskRow) -> bool:
        """Is ``row``'s task most likely stored already (so an ``UPDATE`` finds it)?"""
        if row.status == PENDING:
            return False
        return row.task_id in self._stored_here or self.driver.pending_rows

    def _remember(self, row: TaskRow) -> None:
        """Note that ``row``'s task is stored, until it finishes."""
        if row.status in TERMINAL_STATES:
            self._stored_here.pop(row.task_id, None)
            return
        if len(self._stored_here) >= REMEMBERED_TASKS:
            self._stored_here.clear()  # tasks that never finished: forget them all
        self._stored_here[row.task_id] = None

    def _update_stored(self, row: TaskRow) -> bool:
        """Write ``row`` over its stored row by an ``UPDATE``; False if it changed none.

        None changed: the row is missing (forgotten, cleaned up, or its task never sent
        through us) or its stored state may not be overwritten; the upsert that follows
        inserts it or, by the same precedence rule, leaves it as it is.
        """
        announce = self.driver.notify and row.status in TERMINAL_STATES
        kind = "announced update" if announce else "update"
        key = precedence_class(row.status)
        sql = self._statements.get((kind, 1, key))
        if sql is None:
            sql = self._task_update(key, row.status)
            if announce:
                sql = self.announce_sql(sql)
            self._statements[(kind, 1, key)] = sql
        # task_row_params gives COLUMNS order: task_id, the REPLACED columns, then
        # date_created, date_started, date_done; the UPDATE takes no date_created and
        # the task id last.
        params = self.task_row_params((row,))
        del params[-3]
        params.append(params[0])
        del params[0]
        return self.execute(sql, params) > 0

    def _task_update(self, key: int, state: str) -> str:
        stored = self.stored_value_sql
        sets = []
        for column in (*TaskRow.REPLACED, "date_started", "date_done"):
            if column == "date_started":
                value = f"COALESCE({stored(column)}, %s)"
            elif column in TaskRow.KEPT_WHEN_NONE:
                value = f"COALESCE(%s, {stored(column)})"
            else:
                value = "%s"
            sets.append(f"{column} = {value}")
        sets.append(f"{ROLLED_UP} = FALSE")  # the history counts the row again
        test = overwritable_sql(state, stored("status"))
        return (
            f"{self.update_sql(self.task_table)} SET {', '.join(sets)} "
            f"WHERE {stored('task_id')} = %s AND {test}"
        )

    def _task_upsert(self, count: int, key: int | None, state: str) -> str:
        new, stored = self.new_value_sql, self.stored_value_sql
        if key is None:
            test = overwritable_by_rank_sql(stored("status"), new("status"))
        else:
            test = overwritable_sql(state, stored("status"))
        assignments = []
        for column in (*TaskRow.REPLACED, "date_started", "date_done"):
            if column == "status":
                continue  # last: see upsert_sql
            if column == "date_started":
                value = f"COALESCE({stored(column)}, {new(column)})"
            elif column in TaskRow.KEPT_WHEN_NONE:
                value = f"COALESCE({new(column)}, {stored(column)})"
            else:
                value = new(column)
            assignments.append((column, value))
        assignments.append((ROLLED_UP, "FALSE"))  # the history counts the row again
        assignments.append(("status", new("status")))
        sql = self._insert(self.task_table, COLUMNS, count)
        sql += " " + self.upsert_sql("task_id", assignments, test)
        self._statements[("task", count, key)] = sql
        return sql

    def store_pending_results(self, rows: Sequence[TaskRow]) -> None:
        """Insert PENDING rows; a stored one only has its ``date_created`` moved earlier."""
        arrays = self.rows_from_arrays_sql()
        for chunk in self.pending_row_chunks(rows):
            count = 0 if arrays is not None else len(chunk)
            sql = self._statements.get(("pending", count, None))
            if sql is None:
                sql = self._pending_upsert(count, arrays)
            params: list[Any]
            if arrays is not None:
                params = [
                    list(column) for column in zip(*(r.values() for r in chunk), strict=True)
                ]
            else:
                params = self.task_row_params(chunk)
            with self.cursor() as cursor:
                cursor.execute(sql, params)

    def _pending_upsert(self, count: int, arrays: str | None) -> str:
        new, stored = self.new_value_sql("date_created"), self.stored_value_sql("date_created")
        head = self.insert_into_sql(self.task_table)
        source = arrays if arrays is not None else self.values_sql(count, len(COLUMNS))
        # An earlier send time changes the row's wait: the history counts it again.
        # First: MySQL assigns left to right, and the test reads date_created.
        assignments = [(ROLLED_UP, "FALSE"), ("date_created", new)]
        conflict = self.upsert_sql("task_id", assignments, f"{stored} > {new}")
        sql = f"{head} ({', '.join(COLUMNS)}) {source} {conflict}"
        self._statements[("pending", count, None)] = sql
        return sql

    def get_task_results(self, task_ids: Sequence[str]) -> dict[str, TaskResult]:
        """Read many ids with one array parameter where the vendor has one."""
        ids = list(dict.fromkeys(task_ids))
        if len(ids) < 2 or self.ids_array_match_sql is None:
            return super().get_task_results(ids)
        sql = self._statements.get(("read", 0, None))
        if sql is None:
            one = self.task_select_sql()
            if not one.endswith("= %s"):  # pragma: no cover - a custom manager's filter
                raise RuntimeError(f"cannot reuse the task result query {one!r}")
            sql = self._statements[("read", 0, None)] = (
                one[: -len("= %s")] + self.ids_array_match_sql
            )
        return self.load_task_results(sql, [ids])

    # -- groups --------------------------------------------------------------------------

    def store_group_result(
        self, group_id: str, content_type: str, content_encoding: str, result: str | None
    ) -> None:
        """Insert or replace the group's row in one upsert."""
        sql = self._statements.get(("group", 1, None))
        if sql is None:
            assignments = [(column, self.new_value_sql(column)) for column in GROUP_REPLACED]
            sql = self._insert(self.group_table, GROUP_COLUMNS, 1)
            sql += " " + self.upsert_sql("group_id", assignments, None)
            self._statements[("group", 1, None)] = sql
        now = self.adapt_datetime(timezone.now())
        with self.cursor() as cursor:
            cursor.execute(sql, [group_id, now, now, content_type, content_encoding, result])

    # -- chords --------------------------------------------------------------------------

    def chord_part_return(self, group_id: str) -> int | None:
        """Decrement and read the counter in one statement (a second one at zero)."""
        cursor = self.shared_cursor()
        remaining = self.decrement_chord_counter(cursor, group_id)
        if remaining is not None:
            return remaining
        # Already at zero (a header task counted twice), or no counter at all.
        cursor.execute(
            f"SELECT count FROM {self.chord_counter_table} WHERE group_id = %s", [group_id]
        )
        row = cursor.fetchone()
        return None if row is None else int(row[0])

    # -- cleanup -------------------------------------------------------------------------

    def delete_matching(
        self,
        model: type[Model],
        condition: Q,
        batch_size: int,
        until: float | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Delete in chunks (:meth:`delete_chunks`), each its own short transaction.

        The condition is compiled by the ORM once. When Django must delete (a model
        points at the rows, or delete signals listen), the ORM's deletes run instead.
        """
        matching = model._default_manager.db_manager(self.alias).filter(condition)
        if not Collector(using=self.alias).can_fast_delete(matching):
            return super().delete_matching(model, condition, batch_size, until, progress)
        query = matching.query
        try:
            where, where_params = query.get_compiler(using=self.alias).compile(query.where)
        except EmptyResultSet:
            return 0
        except FullResultSet:
            where, where_params = "1 = 1", ()
        table = self.connection.ops.quote_name(model._meta.db_table)
        size = ChunkSize(batch_size)
        total = 0
        began = time.monotonic()
        for deleted in self.delete_chunks(table, where, where_params, size):
            ended = time.monotonic()
            size.took(ended - began)
            total += deleted
            if progress is not None:
                progress(total)
            if until is not None and ended >= until:
                break
            began = time.monotonic()
        return total

    def range_walk(self, table: str, condition: str, params: Sequence[Any]) -> RangeWalk | None:
        """The walk in storage order where the database would read the whole table, or None.

        When most of a table expires, one ``DELETE`` reads it front to back and leaves the
        indexes for later; chunks found through the ``date_done`` index read every row's
        page a second time. A driver that can ask its planner returns a :class:`RangeWalk`
        when it would scan the whole table; None (the default) runs the index chunks.
        """
        return None

    def delete_chunks(
        self, table: str, condition: str, params: Sequence[Any], size: ChunkSize
    ) -> Iterator[int]:
        """Delete the rows of ``table`` matching ``condition``; yield each chunk's count.

        Each chunk takes ``size.rows`` rows, which the caller adjusts between chunks. In
        storage order when the driver gives a :meth:`range_walk`: each chunk a range of
        about ``size.rows`` rows' worth of positions, front to back, the same work as one
        ``DELETE`` in short transactions; the last range is open, so rows added meanwhile
        are seen. Otherwise oldest first, through the ``date_done`` index
        (:meth:`index_chunks`). The caller stops iterating to stop.
        """
        walk = self.range_walk(table, condition, params)
        if walk is None:
            yield from self.index_chunks(table, condition, params, size)
            return
        start = walk.start
        while start < walk.end:
            end = start + max(1, round(size.rows * walk.per_row))
            if end < walk.end:
                bounds = f"{walk.column} >= {walk.mark} AND {walk.column} < {walk.mark}"
                values = [walk.bound(start), walk.bound(end)]
            else:
                bounds, values = f"{walk.column} >= {walk.mark}", [walk.bound(start)]
            with self.cursor() as cursor:
                cursor.execute(
                    f"DELETE FROM {table} WHERE {bounds} AND ({condition})", [*values, *params]
                )
                deleted = cursor.rowcount
            yield deleted
            start = end

    def index_chunks(
        self, table: str, condition: str, params: Sequence[Any], size: ChunkSize
    ) -> Iterator[int]:
        """Delete oldest first, a chunk at a time, through the ``date_done`` index.

        Each chunk is :meth:`delete_chunk`. Where the chunk statement returns its latest
        ``date_done`` (:attr:`delete_chunk_returns_last`), the next chunk starts there, so
        it does not walk again over the index entries of rows just deleted (PostgreSQL
        keeps them until vacuum).
        """
        chunk_condition, chunk_params = condition, list(params)
        while True:
            rows = size.rows
            with self.cursor() as cursor:
                deleted, last = self.delete_chunk(
                    cursor, table, chunk_condition, chunk_params, rows
                )
            yield deleted
            # With a watermark a chunk can come out short because a worker changed one of
            # its rows meanwhile: only an empty chunk says the end was reached.
            if deleted == 0 or (last is None and deleted < rows):
                return
            if last is not None:
                date_done = self.connection.ops.quote_name("date_done")
                chunk_condition = f"{condition} AND {table}.{date_done} >= %s"
                chunk_params = [*params, last]

    # -- errors --------------------------------------------------------------------------

    def is_transient_error(self, exc: BaseException) -> bool:
        """Ask :meth:`client_error_is_transient` along the chain, then the generic test."""
        if isinstance(exc, InterfaceError):
            return True
        for error in error_chain(exc):
            verdict = self.client_error_is_transient(error)
            if verdict is not None:
                return verdict
        return super().is_transient_error(exc)

    # -- helpers -------------------------------------------------------------------------

    def _insert(self, table: str, columns: Sequence[str], count: int) -> str:
        head = self.insert_into_sql(table)
        return f"{head} ({', '.join(columns)}) {self.values_sql(count, len(columns))}"


def waves(rows: Sequence[TaskRow]) -> list[list[TaskRow]]:
    """Split rows so no wave holds a task id twice; a later write lands in a later wave."""
    result: list[list[TaskRow]] = []
    seen: dict[str, int] = {}
    for row in rows:
        index = seen.get(row.task_id, 0)
        seen[row.task_id] = index + 1
        if index == len(result):
            result.append([])
        result[index].append(row)
    return result
