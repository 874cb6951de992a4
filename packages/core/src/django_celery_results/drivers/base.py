"""The driver contract: ``BaseDriver`` ties a vendor to its features and operations."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, cast

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Q

from .retry import RetryingOperations
from .rows import TaskRow

if TYPE_CHECKING:
    from django.db.models import Model

    from ..models import ChordCounter as ChordCounterModel
    from ..models import GroupResult as GroupResultModel
    from ..models import TaskResult as TaskResultModel


#: The app label of the models (upstream's): drivers get them from Django's app registry.
APP_LABEL = "django_celery_results"


def error_chain(exc: BaseException) -> Iterator[BaseException]:
    """Yield ``exc`` and the exceptions it was raised from, for reading a DB-API error.

    Django raises its own ``django.db`` errors from the database library's, so a driver's
    ``is_transient_error`` finds the library's error (and its code) in this chain.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


class NotificationsUnavailable(RuntimeError):
    """Notifications cannot reach this process; clients waiting on results poll instead."""


class ListenerLost(ConnectionError):
    """The listening connection broke: reconnect, and read every pending result again."""


class BaseFeatures:
    """What a driver's database can do; core and the conformance suite read these flags.

    Each flag answers a question. Vendor classes override only what differs.
    """

    #: Does ``store_task_results`` write a row in one statement that applies the state
    #: precedence rule itself (no read before the write)?
    supports_single_statement_upsert = False
    #: Does ``store_task_results`` write many rows in one statement?
    supports_multi_row_upsert = False
    #: Does ``chord_part_return`` decrement and read the counter in one statement?
    supports_atomic_chord_decrement = False
    #: Do writers in several processes share the database (False for in-memory SQLite)?
    supports_concurrent_processes = True
    #: Can writes of finished tasks notify listening clients (``announce_sql``), and can
    #: ``ops.listener()`` wait for those notices (PostgreSQL's ``LISTEN``/``NOTIFY``)?
    supports_notify = False
    #: Can polls and writes run on the client connection's own cursor, statements
    #: converted once to its ``?`` marks, where Django's cursor converts on every run?
    can_run_plain_client_cursor = False

    def __init__(self, driver: BaseDriver) -> None:
        self.driver = driver

    @property
    def connection(self) -> BaseDatabaseWrapper:
        """The driver's connection, for flags that depend on the server."""
        return self.driver.connection


#: The largest value of each integer column type, as databases name them.
INTEGER_MAXIMUM = {
    "smallint": 2**15 - 1,
    "mediumint": 2**23 - 1,
    "integer": 2**31 - 1,
    "int": 2**31 - 1,
    "bigint": 2**63 - 1,
}


@dataclass(frozen=True, slots=True)
class IdUsage:
    """How far a table's integer ``id`` has counted, against the largest its type holds."""

    #: The last id drawn (upserts draw one per write, updates included).
    last: int
    #: The largest value of the column's type (2,147,483,647 for a 32-bit integer).
    maximum: int
    #: The column's type, as the database names it (``integer``, ``bigint``, ``int(11)``).
    type: str

    @property
    def share(self) -> float:
        """The part of the range used, 0 to 1."""
        return self.last / self.maximum if self.maximum else 0.0

    @classmethod
    def of_type(cls, last: int, column_type: str, limit: int | None = None) -> IdUsage | None:
        """``last`` against the largest value of ``column_type`` (and ``limit``, if lower).

        ``column_type`` as the database spells it: ``integer``, ``bigint``, ``int(11)``,
        ``int(10) unsigned``; None for a type that is not an integer.
        """
        name = column_type.split("(")[0].split()[0].lower()
        maximum = INTEGER_MAXIMUM.get(name)
        if maximum is None:
            return None
        if "unsigned" in column_type.lower():
            maximum = maximum * 2 + 1
        if limit is not None:
            maximum = min(maximum, limit)
        return cls(last=last, maximum=maximum, type=column_type)


class BaseOperations(Protocol):
    """The database operations of the result backend: what core calls, and what they promise.

    Docstrings only, as pluggy's hook specifications: :class:`~.generic.GenericOperations`
    implements every one with the ORM (and the members below), and a driver subclasses
    it, or :class:`~.sql.SQLOperations`, overriding what it speeds up. Each method runs on
    the driver's database alias, in autocommit mode unless the caller opened a
    transaction. Writes must be idempotent: core retries them after a transient error.
    """

    def __init__(self, driver: BaseDriver) -> None:
        """The operations of ``driver``'s alias (one instance per driver)."""

    # -- members every operation may use --------------------------------------------------

    #: The driver the operations belong to (its ``features``, ``pending_rows``, ``notify``).
    driver: BaseDriver
    #: The result models, from Django's app registry (the user's table names included).
    TaskResult: type[TaskResultModel]
    GroupResult: type[GroupResultModel]
    ChordCounter: type[ChordCounterModel]
    #: The placeholder of one array parameter in :meth:`cursor`'s statements.
    array_placeholder: ClassVar[str]
    #: Statements that take a named session lock without waiting (selecting a true value
    #: when taken) and release it, with :meth:`session_lock_key`'s parameter; None where
    #: the database has none (the worker election then leases a row).
    session_lock_sql: ClassVar[tuple[str, str] | None]

    @property
    def alias(self) -> str:
        """The Django database alias the operations run on."""

    @property
    def connection(self) -> BaseDatabaseWrapper:
        """The calling thread's connection to the alias."""

    @property
    def task_table(self) -> str:
        """The ``TaskResult`` table's name, quoted for the alias's database."""

    @property
    def group_table(self) -> str:
        """The ``GroupResult`` table's name, quoted for the alias's database."""

    @property
    def chord_counter_table(self) -> str:
        """The ``ChordCounter`` table's name, quoted for the alias's database."""

    def execute(self, sql: str, params: Sequence[Any]) -> int:
        """Run one statement on a client cursor kept per connection; return rows changed."""

    def fetch_one(self, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
        """Run a ``SELECT`` of at most one row on the kept client cursor; return the row."""

    def shared_cursor(self) -> Any:
        """A Django cursor over one client cursor kept per connection (use without ``with``)."""

    def new_shared_cursor(self, connection: Any) -> Any:
        """Return the client cursor :meth:`shared_cursor` keeps."""

    def new_client_cursor(self, connection: Any) -> Any:
        """Return the client cursor :meth:`execute` and :meth:`fetch_one` keep."""

    def cursor(self) -> Any:
        """Return a new Django cursor for a few statements, to use with ``with``."""

    # -- operations ----------------------------------------------------------------------

    def store_task_results(self, rows: Sequence[TaskRow]) -> None:
        """Insert or update one row per item, in order, applying the state precedence rule.

        A row whose stored state may not be overwritten (``states.may_overwrite``) is left
        untouched. ``date_created`` is set on insert only; ``date_started`` is kept once
        set. Concurrent writers of the same task id never raise ``IntegrityError``.
        """

    def store_pending_results(self, rows: Sequence[TaskRow]) -> None:
        """Insert PENDING rows of tasks just sent, as few statements as the database allows.

        A task id already stored (a fast worker wrote first, or the task was sent again)
        keeps everything but ``date_created``, which moves to the row's ``date_done`` (the
        send time) when that is earlier: ``date_created`` is the earliest time we know of.
        """

    def get_task_results(self, task_ids: Sequence[str]) -> dict[str, TaskResultModel]:
        """Return the stored rows of ``task_ids`` by task id; missing ids are absent."""

    def get_task_meta_values(self, task_id: str) -> tuple[Any, ...] | None:
        """Return one task's :data:`TASK_META_COLUMNS` values as stored, or ``None``.

        What every poll (``AsyncResult.get()``, ``.state``) reads: Celery's meta is built
        from these values directly, no model instance. Dates as the ORM loads them
        (aware).
        """

    def task_result_exists(self, task_id: str) -> bool:
        """Return True when a row of ``task_id`` is stored, in any state (PENDING too).

        ``AsyncResult.exists()`` asks this. One indexed lookup that reads no column is
        enough.
        """

    def delete_task_result(self, task_id: str) -> None:
        """Delete the row of ``task_id``, if there is one."""

    def store_group_result(
        self, group_id: str, content_type: str, content_encoding: str, result: str | None
    ) -> None:
        """Insert or replace the row of ``group_id``."""

    def get_group_result(self, group_id: str) -> GroupResultModel | None:
        """Return the stored row of ``group_id``, or ``None``."""

    def delete_group_result(self, group_id: str) -> None:
        """Delete the row of ``group_id``, if there is one."""

    def create_chord_counter(self, group_id: str, sub_tasks: str, count: int) -> None:
        """Create the counter of a chord whose header has ``count`` parts."""

    def chord_part_return(self, group_id: str) -> int | None:
        """Decrement the chord's counter, never below zero, and return what remains.

        Returns ``None`` when there is no counter (an unknown chord, or one already fired).
        """

    def get_chord_sub_tasks(self, group_id: str) -> str | None:
        """Return the chord's JSON list of header result tuples, or ``None``."""

    def claim_chord(self, group_id: str) -> bool:
        """Delete the chord's counter; return True only to the one caller that deleted it.

        The caller that wins fires the chord's callback, so it fires exactly once.
        """

    def listener(self) -> Any:
        """Return an unconnected listener for finished tasks (``supports_notify`` only).

        It has ``connect()`` (raises :class:`NotificationsUnavailable` when notices cannot
        reach this process), ``wait(timeout) -> list of task ids`` (raises
        :class:`ListenerLost` when its connection broke; the next call reconnects) and
        ``close()``. It owns a connection of its own, never the thread's Django one.
        """

    def delete_matching(
        self,
        model: type[Model],
        condition: Q,
        batch_size: int,
        until: float | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Delete rows of ``model`` that match ``condition``; return how many.

        Oldest ``date_done`` first, in chunks of ``batch_size`` rows, each in its own short
        transaction, so workers writing meanwhile are never blocked for long; no row is
        loaded into Python. With ``until`` (a ``time.monotonic()`` value) it stops after
        the chunk that ends past it: a later call goes on where it stopped. ``progress``
        is called after each chunk with the rows deleted so far.
        """

    def delete_expired(self, model: type[Model], cutoff: datetime, batch_size: int) -> int:
        """Delete rows of ``model`` whose ``date_done`` is before ``cutoff``; return how many.

        :meth:`delete_matching` with that condition.
        """

    def delete_expired_chord_counters(self, cutoff: datetime, batch_size: int) -> int:
        """Delete counters of dead chords; return how many.

        A chord is dead when every header task has a stored result in a ready state
        whose ``date_done`` is before ``cutoff``: its callback either fired (which would
        have deleted the counter) or never will. Counters of live chords are kept.
        """

    def estimated_row_count(self, model: type[Model]) -> int | None:
        """Return the database's own estimate of ``model``'s rows, or None if it has none.

        Read from statistics, never by counting: the admin shows it on the unfiltered
        list of a table too big for ``COUNT(*)`` on every page view. None makes the
        caller count, at most a bounded number of rows.
        """

    def id_usage(self) -> IdUsage | None:
        """How far the task table's ``id`` has counted, or None where nothing can run out.

        The system check and ``celery_results_stats`` warn before a 32-bit id runs out.
        None where the database cannot say cheaply, or its ids are 64-bit rowids (SQLite).
        """

    def is_transient_error(self, exc: BaseException) -> bool:
        """Return True when ``exc`` means "reconnect and retry" on this database."""

    def uses_repeatable_read(self) -> bool:
        """Return True when the connection's isolation level keeps pollers in old snapshots."""

    def session_lock_key(self, name: str) -> Any:
        """The parameter that names the session lock ``name`` (see :attr:`session_lock_sql`).

        Scoped to this database: two databases on one server must not share a lock.
        """


class BaseDriver:
    """A database driver: the vendor it serves, its features and its operations.

    One instance serves one Django database alias, like Django's ``DatabaseWrapper``.
    """

    #: Django's ``connection.vendor`` this driver serves, e.g. ``"postgresql"``.
    vendor: ClassVar[str] = ""
    #: A short name for the system check and logs.
    display_name: ClassVar[str] = ""
    features_class: ClassVar[type[BaseFeatures]] = BaseFeatures
    #: The operations' class: a :class:`~.generic.GenericOperations` subclass, usually
    #: :class:`~.sql.SQLOperations`'s.
    ops_class: ClassVar[type[BaseOperations]]

    def __init__(self, alias: str, *, pending_rows: bool = False, notify: bool = False) -> None:
        self.alias = alias
        #: Are PENDING rows written when tasks are sent (``TRACK_PENDING``)? Then a
        #: worker's write usually finds its row, and writers may try the UPDATE first.
        self.pending_rows = pending_rows
        #: Do writes that finish a task notify listening clients (``NOTIFY``, where the
        #: features say ``supports_notify``)?
        self.notify = notify
        self.features = self.features_class(self)
        self.ops = self.ops_class(self)
        #: :attr:`ops` with every call retried after a transient error: how core calls.
        self.retrying = cast(BaseOperations, RetryingOperations(self))

    @property
    def connection(self) -> BaseDatabaseWrapper:
        """The calling thread's connection to the alias (Django keeps one per thread)."""
        return connections[self.alias]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} vendor={self.vendor!r} alias={self.alias!r}>"
