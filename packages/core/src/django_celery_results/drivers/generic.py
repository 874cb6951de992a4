"""The generic driver: every operation with the portable ORM, for SQLite and unknown vendors."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, cast

from django.apps import apps
from django.db import IntegrityError, transaction
from django.db.models import Case, DateTimeField, F, Model, Q, Value, When
from django.db.models.constants import OnConflict
from django.db.models.functions import Coalesce
from django.db.models.sql import InsertQuery, UpdateQuery
from django.db.models.sql.compiler import SQLCompiler
from django.db.models.sql.constants import ROW_COUNT
from django.db.utils import InterfaceError, OperationalError, ProgrammingError
from django.utils import timezone

from ..states import TERMINAL_STATES, is_terminal, overwritable_q
from .base import APP_LABEL, BaseDriver, BaseFeatures, IdUsage
from .cursors import ClientCursors
from .rows import TASK_META_COLUMNS, TaskRow

if TYPE_CHECKING:
    from ..models import ChordCounter, GroupResult, TaskResult

#: Parts of error messages that mean the database will accept the same statement again
#: soon: a lock or conflict that went away, or a connection that must be reopened. The
#: generic driver cannot know every vendor's error codes, so it reads the message; a
#: vendor driver checks codes instead.
TRANSIENT_MESSAGES = (
    "database is locked",  # SQLite: another connection holds the write lock
    "database table is locked",  # SQLite shared cache
    "deadlock",  # PostgreSQL 40P01, MySQL 1213
    "could not serialize access",  # PostgreSQL 40001
    "lock wait timeout",  # MySQL 1205
    "server has gone away",  # MySQL 2006
    "lost connection",  # MySQL 2013
    "connection already closed",  # Django, psycopg
    "the connection is closed",  # psycopg 3
    "server closed the connection",  # libpq
    "terminating connection",  # PostgreSQL admin shutdown / pg_terminate_backend
    "connection reset",
    "cannot operate on a closed database",  # SQLite
    "due to lock timeout",  # PostgreSQL 55P03
    "too many connections",  # PostgreSQL 53300, MySQL 1040
    "max_user_connections",  # MySQL 1203, 1226
    "read-only transaction",  # PostgreSQL 25006
    "read only transaction",  # MySQL 1792
    "--read-only option",  # MySQL 1290
    "can't connect",  # MySQL 2002, 2003
    "connection refused",  # libpq
    "the database system is",  # PostgreSQL shutting down, starting up, in recovery
    "server shutdown in progress",  # MySQL 1053
    "connection was killed",  # MariaDB 1927
    "record has changed since last read",  # MariaDB 1020 (snapshot isolation)
)

#: Ids per query when reading many rows: below every database's parameter limit.
READ_CHUNK = 900

#: The task id the one-id ``SELECT`` is compiled with, then replaced by the real one.
_PLACEHOLDER = "\x00task-id\x00"


class GenericFeatures(BaseFeatures):
    """Features of the ORM implementation: nothing beyond the portable minimum."""

    @property
    def supports_concurrent_processes(self) -> bool:  # type: ignore[override]
        """An in-memory SQLite database is private to one process."""
        is_in_memory_db = getattr(self.connection, "is_in_memory_db", None)
        return not (is_in_memory_db and is_in_memory_db())

    @cached_property
    def can_run_plain_client_cursor(self) -> bool:  # type: ignore[override]
        """On Django's SQLite backend, whose cursor only converts ``%s`` to ``?`` marks.

        Other backends keep their cursors: a third-party backend's may do more.
        """
        # Django imports its SQLite backend when it opens such a connection: where it is
        # not imported, no connection is SQLite's (and this process pays no import).
        sqlite = sys.modules.get("django.db.backends.sqlite3.base")
        return sqlite is not None and isinstance(self.connection, sqlite.DatabaseWrapper)


class GenericOperations(ClientCursors):
    """Portable ORM implementations of every operation.

    Writes are single statements in autocommit mode (update first, insert if missing), so
    they never hold a lock while reading; that is what keeps SQLite's "database is locked"
    away under concurrent writers.
    """

    #: Statements that take a named lock for this session without waiting (selecting a
    #: true value when it is taken) and release it; None where the database has no such
    #: lock: the election then holds a lease row (``workers.election``).
    session_lock_sql: ClassVar[tuple[str, str] | None] = None

    def session_lock_key(self, name: str) -> Any:
        """The parameter that names the lock ``name`` in :attr:`session_lock_sql`."""
        return name

    def __init__(self, driver: BaseDriver) -> None:
        super().__init__()
        self.driver = driver
        # Through the app registry, not by import: the models' managers import the drivers.
        #: The result models, for ORM queries and ``_meta`` (the user's swapped-in
        #: managers and table names included).
        self.TaskResult = cast("type[TaskResult]", apps.get_model(APP_LABEL, "TaskResult"))
        self.GroupResult = cast("type[GroupResult]", apps.get_model(APP_LABEL, "GroupResult"))
        self.ChordCounter = cast("type[ChordCounter]", apps.get_model(APP_LABEL, "ChordCounter"))
        self._insert_sql: dict[type[Model], str] = {}
        self._select_one: tuple[str, SQLCompiler, dict[int, Any], list[str]] | None = None
        self._select_meta: tuple[str, list[tuple[int, list[Any], Any]]] | None = None

    @property
    def alias(self) -> str:
        """The Django database alias the operations run on."""
        return self.driver.alias

    @property
    def task_table(self) -> str:
        """The ``TaskResult`` table's name, quoted for the alias's database."""
        return self.connection.ops.quote_name(self.TaskResult._meta.db_table)

    @property
    def group_table(self) -> str:
        """The ``GroupResult`` table's name, quoted for the alias's database."""
        return self.connection.ops.quote_name(self.GroupResult._meta.db_table)

    @property
    def chord_counter_table(self) -> str:
        """The ``ChordCounter`` table's name, quoted for the alias's database."""
        return self.connection.ops.quote_name(self.ChordCounter._meta.db_table)

    # -- tasks ---------------------------------------------------------------------------

    def store_task_results(self, rows: Sequence[TaskRow]) -> None:
        """Write each row with an INSERT that skips existing ids, or a guarded UPDATE.

        A task's first write is usually a non-terminal state (STARTED, or PENDING when it
        is sent) and its later ones terminal, so a non-terminal row tries the INSERT first
        and a terminal one the UPDATE: a STARTED-then-SUCCESS lifecycle takes two
        statements, as many as a native upsert would. A terminal row merged with a state
        that was never written (batched writes) tries the INSERT first too.

        Several rows (a batch of ``BATCH_WRITES``) are first inserted together, in one
        INSERT that skips stored ids: a batch's tasks are mostly new, their STARTED merged
        into their SUCCESS. Only the rows it did not insert go the row-by-row way. With
        ``TRACK_PENDING`` every task has a row from the moment it was sent, so a batch
        goes the row-by-row way from the start.
        """
        if len(rows) > 1 and not self.driver.pending_rows:
            rows = self._insert_new_rows(rows)
        for row in rows:
            self._store_task_row(row)

    def _insert_new_rows(self, rows: Sequence[TaskRow]) -> Sequence[TaskRow]:
        """Insert the rows of ids not stored yet, in few statements; return the others.

        When the INSERT wrote fewer rows than it was given, each id's state and
        ``date_done`` are read back: a row that does not find its own was skipped (its id
        was stored, or the database refused it for another reason, as SQLite's OR IGNORE
        and MySQL's IGNORE do) and is returned, to be written with the precedence rule.
        """
        if not self.connection.features.supports_ignore_conflicts:
            return rows
        if len({row.task_id for row in rows}) < len(rows):
            return rows  # one id twice: its writes apply one after the other
        objs = [self.TaskResult(**row.columns()) for row in rows]
        if self._insert_many_ignoring(self.TaskResult, objs) == len(rows):
            return ()
        manager = self.TaskResult._default_manager.db_manager(self.alias)
        ids = [row.task_id for row in rows]
        stored: dict[str, tuple[str, Any]] = {}
        for start in range(0, len(ids), READ_CHUNK):
            found = manager.filter(task_id__in=ids[start : start + READ_CHUNK]).order_by()
            for task_id, status, date_done in found.values_list("task_id", "status", "date_done"):
                stored[task_id] = (status, date_done)
        return [row for row in rows if stored.get(row.task_id) != (row.status, row.date_done)]

    def _store_task_row(self, row: TaskRow) -> None:
        # A terminal row usually finds its task's STARTED (or PENDING) row: update first.
        # One merged with an earlier state this process never wrote (batched writes: its
        # date_created is that state's) is most likely new, unless TRACK_PENDING stored
        # every task when it was sent.
        update_first = is_terminal(row.status) and (
            row.date_created is None or self.driver.pending_rows
        )
        if update_first:
            if self._update_task(row) or self._insert_task(row):
                return
        elif self._insert_task(row):
            return
        # The row exists (maybe inserted by another writer since our UPDATE): precedence
        # decides inside the UPDATE, and a refused write changes nothing.
        if self._update_task(row) or self.task_result_exists(row.task_id):
            return
        # Neither inserted nor stored: the INSERT skipped the row for another reason than
        # its id (SQLite's OR IGNORE and MySQL's IGNORE also skip other errors). Insert it
        # plainly, so the database raises the real error instead of losing the write.
        try:
            with self._savepoint():
                self._plain_insert(self.TaskResult, self.TaskResult(**row.columns()))
        except IntegrityError:
            self._update_task(row)  # inserted by another writer after all

    def store_pending_results(self, rows: Sequence[TaskRow]) -> None:
        """One multi-row INSERT that skips stored ids, then one UPDATE for earlier sends.

        Django's ``bulk_create`` cuts the INSERT into as many statements as the database's
        parameter limit needs. The UPDATE touches only stored rows created later than the
        send time, so after a fresh publish (no row yet) it changes nothing.
        """
        manager = self.TaskResult._default_manager.db_manager(self.alias)
        sent = {row.task_id: row.date_done for row in rows}
        objs = [self.TaskResult(**row.columns()) for row in rows]
        if self.connection.features.supports_ignore_conflicts:
            self._insert_many_ignoring(self.TaskResult, objs)
        else:
            for obj in objs:
                self._insert_unless_exists(self.TaskResult, obj)
        ids = list(sent)
        for start in range(0, len(ids), READ_CHUNK // 3):
            chunk = ids[start : start + READ_CHUNK // 3]
            earlier = Q()
            for task_id in chunk:
                earlier |= Q(task_id=task_id, date_created__gt=sent[task_id])
            manager.filter(earlier).update(
                rolled_up=False,
                date_created=Case(
                    *(When(task_id=task_id, then=Value(sent[task_id])) for task_id in chunk),
                    default=F("date_created"),
                    output_field=DateTimeField(),
                ),
            )

    def task_result_exists(self, task_id: str) -> bool:
        """``SELECT 1 … WHERE task_id = %s LIMIT 1``: the unique index answers, no row is read."""
        manager = self.TaskResult._default_manager.db_manager(self.alias)
        return manager.filter(task_id=task_id).exists()

    def _update_task(self, row: TaskRow) -> bool:
        """Apply ``row`` to a stored row its state may overwrite; return True if one was.

        Built as an ``UpdateQuery`` rather than through ``QuerySet.update()``: this is the
        hot path of every task, and the queryset's cloning costs as much as the compiling.
        """
        changes = row.replaced_values()
        changes["date_done"] = row.date_done
        changes["rolled_up"] = False  # the history counts the row again
        if row.date_started is not None:
            changes["date_started"] = Coalesce(
                F("date_started"), Value(row.date_started, output_field=DateTimeField())
            )
        query = UpdateQuery(self.TaskResult)
        query.add_update_values(changes)
        query.add_q(Q(task_id=row.task_id) & overwritable_q(row.status))
        return bool(query.get_compiler(using=self.alias).execute_sql(ROW_COUNT))

    def _insert_task(self, row: TaskRow) -> bool:
        """Insert ``row`` unless its task id is stored; return True if it was inserted."""
        return self._insert_unless_exists(self.TaskResult, self.TaskResult(**row.columns()))

    def get_task_results(self, task_ids: Sequence[str]) -> dict[str, TaskResult]:
        """Read the rows in chunks of :data:`READ_CHUNK` ids, one query per chunk."""
        ids = list(dict.fromkeys(task_ids))
        if len(ids) == 1:
            return self._get_one_task_result(ids[0])
        manager = self.TaskResult._default_manager.db_manager(self.alias)
        found: dict[str, TaskResult] = {}
        for start in range(0, len(ids), READ_CHUNK):
            chunk = ids[start : start + READ_CHUNK]
            found.update((r.task_id, r) for r in manager.filter(task_id__in=chunk).order_by())
        return found

    def _get_one_task_result(self, task_id: str) -> dict[str, TaskResult]:
        """Read one id with the ``SELECT`` the ORM compiled once for this alias.

        Polling one task is the hottest read, and compiling its queryset costs several
        times the query itself; the statement and the column converters never change.
        """
        select = self._select_one or self._compile_select()
        return self._load(select, select[0], [task_id])

    def get_task_meta_values(self, task_id: str) -> tuple[Any, ...] | None:
        """Read a poll's columns with a ``SELECT`` built once; no model instance, no ORM.

        The ORM's column converters are applied to the row, as a queryset would (SQLite's
        and MySQL's naive dates become aware), without the queryset's generators.
        """
        sql, converters = self._select_meta or self._compile_meta_select()
        row = self.fetch_one(sql, [task_id])
        if row is None or not converters:
            return row
        values = list(row)
        connection = self.connection
        for index, functions, expression in converters:
            value = values[index]
            for convert in functions:
                value = convert(value, expression, connection)
            values[index] = value
        return tuple(values)

    def _compile_meta_select(self) -> tuple[str, list[tuple[int, list[Any], Any]]]:
        # The ORM's statement names every column by table and alias, several times as
        # long as this one: SQLite scans it, and MySQL parses it, on every run.
        _, _, converters, selected = self._compile_one_id_select(TASK_META_COLUMNS)
        # The converters are indexed by the compiled columns' order, which values_list
        # keeps as asked: the row comes back in TASK_META_COLUMNS order, as callers read it.
        names = [column.target.attname for column in selected]
        if names != list(TASK_META_COLUMNS):
            raise RuntimeError(f"the ORM selected {names}, not {list(TASK_META_COLUMNS)}")
        quote = self.connection.ops.quote_name
        columns = [quote(column.target.column) for column in selected]
        listed = ", ".join(columns)
        sql = f"SELECT {listed} FROM {self.task_table} WHERE {columns[0]} = %s"  # task_id
        steps = [
            (index, functions, expression) for index, (functions, expression) in converters.items()
        ]
        self._select_meta = (sql, steps)
        return self._select_meta

    def task_select_sql(self) -> str:
        """Return the ORM's ``SELECT`` of one task's row, ending in ``task_id = %s``."""
        return (self._select_one or self._compile_select())[0]

    def load_task_results(self, sql: str, params: Sequence[Any]) -> dict[str, TaskResult]:
        """Run a ``SELECT`` of :meth:`task_select_sql`'s columns; return its rows by task id.

        The ORM's converters are applied as a queryset would (MySQL's naive dates become
        aware), without building one.
        """
        return self._load(self._select_one or self._compile_select(), sql, params)

    def _compile_select(self) -> tuple[str, SQLCompiler, dict[int, Any], list[str]]:
        sql, compiler, converters, columns = self._compile_one_id_select()
        names = [column.target.attname for column in columns]
        self._select_one = (sql, compiler, converters, names)
        return self._select_one

    def _compile_one_id_select(
        self, fields: Sequence[str] = ()
    ) -> tuple[str, SQLCompiler, dict[int, Any], list[Any]]:
        """Compile the ORM's ``SELECT`` of one task id (of ``fields`` only, when given).

        Returns its SQL ending in ``task_id = %s``, the compiler, its column converters
        and its selected columns.
        """
        query = self.TaskResult._default_manager.filter(task_id=_PLACEHOLDER).order_by()
        if fields:
            query = query.values_list(*fields)
        compiler = query.query.get_compiler(using=self.alias)
        sql, params = compiler.as_sql()
        if list(params) != [_PLACEHOLDER]:  # pragma: no cover - a custom manager's filter
            raise RuntimeError(f"cannot reuse the task result query {sql!r}")
        columns = [expression for expression, _, _ in compiler.select]
        return sql, compiler, compiler.get_converters(columns), columns

    def _load(
        self,
        select: tuple[str, SQLCompiler, dict[int, Any], list[str]],
        sql: str,
        params: Sequence[Any],
    ) -> dict[str, TaskResult]:
        _, compiler, converters, names = select
        cursor = self.shared_cursor()
        cursor.execute(sql, params)
        rows = cursor.fetchall()
        if converters:
            rows = list(compiler.apply_converters(rows, converters))
        found = (self.TaskResult.from_db(self.alias, names, row) for row in rows)
        return {obj.task_id: obj for obj in found}

    def delete_task_result(self, task_id: str) -> None:
        """Delete through the ORM, so the user's foreign keys to results are honoured."""
        self.TaskResult._default_manager.db_manager(self.alias).filter(task_id=task_id).delete()

    # -- groups --------------------------------------------------------------------------

    def store_group_result(
        self, group_id: str, content_type: str, content_encoding: str, result: str | None
    ) -> None:
        """Insert the row unless the group is stored, else update it.

        Insert first: a group is usually saved once, so that is one statement.
        """
        manager = self.GroupResult._default_manager.db_manager(self.alias)
        changes = {
            "content_type": content_type,
            "content_encoding": content_encoding,
            "result": result,
        }
        now = timezone.now()
        new = self.GroupResult(group_id=group_id, date_created=now, date_done=now, **changes)
        if self._insert_unless_exists(self.GroupResult, new):
            return
        if manager.filter(group_id=group_id).update(date_done=now, **changes):
            return
        # Skipped for another reason than the id (IGNORE skips other errors too): insert
        # plainly, so the database raises the real error instead of losing the group.
        with self._savepoint():
            self._plain_insert(self.GroupResult, new)

    def get_group_result(self, group_id: str) -> GroupResult | None:
        """Return the row of ``group_id`` or ``None``."""
        manager = self.GroupResult._default_manager.db_manager(self.alias)
        return manager.filter(group_id=group_id).order_by().first()

    def delete_group_result(self, group_id: str) -> None:
        """Delete the row of ``group_id``, if there is one."""
        self.GroupResult._default_manager.db_manager(self.alias).filter(group_id=group_id).delete()

    # -- chords --------------------------------------------------------------------------

    def create_chord_counter(self, group_id: str, sub_tasks: str, count: int) -> None:
        """Create the counter; a chord applied twice starts its count again."""
        counters = self.ChordCounter._default_manager.db_manager(self.alias)
        try:
            with self._savepoint():
                counters.create(group_id=group_id, sub_tasks=sub_tasks, count=count)
        except IntegrityError:
            counters.filter(group_id=group_id).update(sub_tasks=sub_tasks, count=count)

    def chord_part_return(self, group_id: str) -> int | None:
        """Decrement with one UPDATE, then read the count back."""
        counters = self.ChordCounter._default_manager.db_manager(self.alias)
        counter = counters.filter(group_id=group_id)
        counter.filter(count__gt=0).update(count=F("count") - 1)
        return counter.order_by().values_list("count", flat=True).first()

    def get_chord_sub_tasks(self, group_id: str) -> str | None:
        """Return the chord's JSON list of header result tuples, or ``None``."""
        counters = self.ChordCounter._default_manager.db_manager(self.alias)
        return (
            counters.filter(group_id=group_id)
            .order_by()
            .values_list("sub_tasks", flat=True)
            .first()
        )

    def claim_chord(self, group_id: str) -> bool:
        """Delete the counter; the database lets exactly one DELETE see the row."""
        counters = self.ChordCounter._default_manager.db_manager(self.alias)
        deleted, _ = counters.filter(group_id=group_id).delete()
        return deleted > 0

    # -- cleanup -------------------------------------------------------------------------

    def delete_matching(
        self,
        model: type[Model],
        condition: Q,
        batch_size: int,
        until: float | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Delete oldest first, one chunk per transaction, through the ORM's collector."""
        manager = model._default_manager.db_manager(self.alias)
        expired = manager.filter(condition).order_by("date_done")
        sliced_subqueries = self.connection.features.allow_sliced_subqueries_with_in
        total = 0
        while True:
            with transaction.atomic(using=self.alias):
                if sliced_subqueries:
                    chunk = expired.values("pk")[:batch_size]
                    deleted, _ = manager.filter(pk__in=chunk).delete()
                else:
                    # MySQL cannot use LIMIT inside IN (…): fetch the ids first.
                    ids = list(expired.values_list("pk", flat=True)[:batch_size])
                    deleted, _ = manager.filter(pk__in=ids).delete() if ids else (0, {})
            total += deleted
            if progress is not None:
                progress(total)
            if deleted < batch_size or (until is not None and time.monotonic() >= until):
                return total

    def delete_expired_chord_counters(self, cutoff: datetime, batch_size: int) -> int:
        """Look at counters ``batch_size`` at a time; one query reads their header results."""
        counters = self.ChordCounter._default_manager.db_manager(self.alias)
        results = self.TaskResult._default_manager.db_manager(self.alias)
        deleted = 0
        last_pk = 0
        while True:
            batch = list(
                counters.filter(pk__gt=last_pk)
                .order_by("pk")
                .values_list("pk", "sub_tasks")[:batch_size]
            )
            if not batch:
                return deleted
            last_pk = batch[-1][0]
            parts = {pk: _header_task_ids(sub_tasks) for pk, sub_tasks in batch}
            wanted = {task_id for ids in parts.values() for task_id in ids}
            expired: set[str] = set()
            for start in range(0, len(wanted), READ_CHUNK):
                chunk = sorted(wanted)[start : start + READ_CHUNK]
                expired.update(
                    results.filter(
                        task_id__in=chunk,
                        status__in=sorted(TERMINAL_STATES),
                        date_done__lt=cutoff,
                    ).values_list("task_id", flat=True)
                )
            dead = [pk for pk, ids in parts.items() if ids and ids <= expired]
            if dead:
                deleted += counters.filter(pk__in=dead).delete()[0]

    # -- what the ORM cannot do, or cannot say -------------------------------------------

    def listener(self) -> Any:
        """No listener: the ORM cannot wait for notifications (``supports_notify`` is off)."""
        raise NotImplementedError("this driver cannot notify listeners")

    def delete_expired(self, model: type[Model], cutoff: datetime, batch_size: int) -> int:
        """:meth:`delete_matching` with ``date_done < cutoff``."""
        return self.delete_matching(model, Q(date_done__lt=cutoff), batch_size)

    def estimated_row_count(self, model: type[Model]) -> int | None:
        """None: the ORM has no statistics to read, so the caller counts (bounded)."""
        return None

    def id_usage(self) -> IdUsage | None:
        """None: the ORM cannot say cheaply how far an id has counted."""
        return None

    def uses_repeatable_read(self) -> bool:
        """False: the ORM cannot ask a server for its isolation level."""
        return False

    # -- errors --------------------------------------------------------------------------

    def is_transient_error(self, exc: BaseException) -> bool:
        """Recognise dropped connections, locks and conflicts by Django's error classes."""
        if isinstance(exc, InterfaceError):
            return True
        if isinstance(exc, OperationalError | ProgrammingError):
            # SQLite reports a closed connection as a ProgrammingError.
            message = str(exc).lower()
            return any(part in message for part in TRANSIENT_MESSAGES)
        return False

    # -- helpers -------------------------------------------------------------------------

    def _savepoint(self) -> AbstractContextManager[object]:
        """A savepoint inside the caller's transaction, so an IntegrityError can be undone.

        In autocommit mode a failed INSERT leaves nothing to undo, and skipping the
        transaction keeps SQLite from holding a lock across two statements.
        """
        if self.connection.in_atomic_block:
            return transaction.atomic(using=self.alias)
        return nullcontext()

    def _plain_insert(self, model: type[Model], obj: Model) -> None:
        """Insert ``obj`` with its field values as given (``raw``: no ``auto_now``)."""
        fields = [f for f in model._meta.local_concrete_fields if not f.primary_key]
        model._default_manager.db_manager(self.alias)._insert(  # type: ignore[attr-defined]
            [obj], fields=fields, using=self.alias, raw=True
        )

    def _insert_many_ignoring(self, model: type[Model], objs: Sequence[Model]) -> int:
        """Insert ``objs`` as given (``raw``), skipping stored unique keys, in few statements.

        ``bulk_create`` would run ``auto_now`` and replace our timestamps; this is its
        INSERT with ``raw=True``, cut at the database's parameter limit. Returns how many
        rows were inserted.
        """
        fields = [f for f in model._meta.local_concrete_fields if not f.primary_key]
        size = self.connection.ops.bulk_batch_size(fields, objs) or len(objs)
        inserted = 0
        for start in range(0, len(objs), size):
            query = InsertQuery(model, on_conflict=OnConflict.IGNORE)
            query.insert_values(fields, list(objs[start : start + size]), raw=True)
            # What SQLInsertCompiler.execute_sql runs, keeping each statement's row count.
            with self._savepoint(), self.connection.cursor() as cursor:
                for sql, params in query.get_compiler(using=self.alias).as_sql():
                    cursor.execute(sql, params)
                    inserted += max(cursor.rowcount, 0)
        return inserted

    def _insert_unless_exists(self, model: type[Model], obj: Model) -> bool:
        """Insert ``obj`` as given; return False when its unique key is already stored.

        ``raw=True`` is what ``Model.save_base`` passes for fixtures: field values are
        written as they are, so ``auto_now`` does not replace our timestamps. Where the
        database can skip a conflicting row (Django's ``supports_ignore_conflicts``), the
        INSERT says so and no error is raised; elsewhere the ``IntegrityError`` is caught.
        """
        fields = [f for f in model._meta.local_concrete_fields if not f.primary_key]
        if not self.connection.features.supports_ignore_conflicts:
            try:
                with self._savepoint():
                    self._plain_insert(model, obj)
            except IntegrityError:
                return False
            return True
        sql = self._insert_sql.get(model)
        if sql is None:
            # A one-row INSERT of plain values compiles to the same SQL every time; keep
            # it, and only prepare the values (this is every task's first write).
            query = InsertQuery(model, on_conflict=OnConflict.IGNORE)
            query.insert_values(fields, [obj], raw=True)
            [(sql, _)] = query.get_compiler(using=self.alias).as_sql()
            self._insert_sql[model] = sql
        params = [f.get_db_prep_save(getattr(obj, f.attname), self.connection) for f in fields]
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            inserted = cursor.rowcount
        return bool(inserted > 0)


def _header_task_ids(sub_tasks: str) -> set[str]:
    """Return the task ids of a chord header (``[[[id, parent], children], …]``).

    An unreadable list gives no ids, which keeps the counter: never delete what we
    cannot read.
    """
    try:
        return {item[0][0] for item in json.loads(sub_tasks)}
    except (ValueError, TypeError, IndexError, KeyError):
        return set()


class GenericDriver(BaseDriver):
    """The driver used when no driver is registered for a database's vendor."""

    vendor = "generic"
    display_name = "generic ORM driver"
    features_class = GenericFeatures
    ops_class = GenericOperations
