"""The cursors operations run on: a client cursor kept per connection, Django's when it must."""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

    from .base import BaseDriver

#: A ``%s`` placeholder of Django's SQL (``%%s`` is a literal ``%s``), as Django finds it.
_FORMAT_MARK = re.compile(r"(?<!%)%s")


class ClientCursors:
    """The cursor members of :class:`~.generic.GenericOperations`, which every driver has.

    A task write or a poll is one small statement: it runs on a client cursor kept per
    client connection, errors still translated to ``django.db``'s. Needs ``driver``.
    """

    driver: BaseDriver
    #: The placeholder of one array parameter in :meth:`cursor`'s statements (PostgreSQL's
    #: driver: psycopg's ``%b``, which sends the array binary, its elements unescaped).
    array_placeholder: ClassVar[str] = "%s"

    def __init__(self) -> None:
        #: Per Django connection (one per thread): its client connection and cursor.
        self._shared_cursors: weakref.WeakKeyDictionary[Any, tuple[Any, Any]] = (
            weakref.WeakKeyDictionary()
        )
        #: Likewise, the client cursors :meth:`fetch_one` runs its statements on.
        self._client_cursors: weakref.WeakKeyDictionary[Any, tuple[Any, Any]] = (
            weakref.WeakKeyDictionary()
        )
        #: Django's ``%s`` statements in the client's paramstyle, converted once each:
        #: the operations' own statements, a few per row count up to ``max_rows``.
        self._client_sql: dict[str, str] = {}

    @property
    def connection(self) -> BaseDatabaseWrapper:
        """The calling thread's connection to the alias."""
        return self.driver.connection

    def shared_cursor(self) -> Any:
        """A Django cursor over one client cursor kept per client connection.

        A task write or a poll is one small statement; making and closing a cursor for
        it costs a tenth of its client time. Django's wrapper is made each time (query
        logging switched on meanwhile still sees the statement, errors are still
        translated), so only the client cursor is kept, with the connection it belongs
        to. Callers use it without ``with``, which would close it.
        """
        connection = self.connection
        cursor = self._kept_cursor(self._shared_cursors, connection, self.new_shared_cursor)
        # _prepare_cursor is how Django wraps every cursor it makes (error translation,
        # query logging); there is no public way to wrap a cursor made beforehand.
        return connection._prepare_cursor(cursor)  # type: ignore[attr-defined]

    def new_shared_cursor(self, connection: Any) -> Any:
        """Return the client cursor :meth:`shared_cursor` keeps: the backend's own."""
        return connection.create_cursor()

    def execute(self, sql: str, params: Sequence[Any]) -> int:
        """Run one statement, a task's write usually; return how many rows it changed.

        A write or a poll is one small statement, and Django's cursor wrapper costs it
        as much as the rest of its Python: it runs on a client cursor kept per client
        connection (:meth:`new_client_cursor`), in the client's paramstyle, errors still
        translated to ``django.db``'s. Through Django's wrapper (:meth:`shared_cursor`)
        instead while queries are logged (``DEBUG``, ``assertNumQueries``), an
        ``execute_wrapper`` is installed or the transaction is broken, so Django logs,
        wraps or refuses it as its own.
        """
        connection = self.connection
        if self._through_django(connection):
            wrapped = self.shared_cursor()
            wrapped.execute(sql, params)
            return int(wrapped.rowcount)
        cursor = self._kept_cursor(self._client_cursors, connection, self.new_client_cursor)
        client_sql = self._client_sql.get(sql) or self._to_client_sql(connection, sql)
        with connection.wrap_database_errors:
            cursor.execute(client_sql, params)
        return int(cursor.rowcount)

    def fetch_one(self, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
        """Run a ``SELECT`` of at most one row, a poll's; return the row, or ``None``.

        On the kept client cursor, as :meth:`execute` runs a statement.
        """
        connection = self.connection
        if self._through_django(connection):
            wrapped = self.shared_cursor()
            wrapped.execute(sql, params)
            return wrapped.fetchone()  # type: ignore[no-any-return]
        cursor = self._kept_cursor(self._client_cursors, connection, self.new_client_cursor)
        client_sql = self._client_sql.get(sql) or self._to_client_sql(connection, sql)
        with connection.wrap_database_errors:
            cursor.execute(client_sql, params)
            return cursor.fetchone()  # type: ignore[no-any-return]

    @staticmethod
    def _through_django(connection: Any) -> bool:
        """Must a statement on ``connection`` go through Django's cursor wrapper?"""
        return bool(
            connection.needs_rollback or connection.execute_wrappers or connection.queries_logged
        )

    def new_client_cursor(self, connection: Any) -> Any:
        """Return the cursor :meth:`fetch_one` keeps: the backend's own.

        Where the features say ``can_run_plain_client_cursor`` (Django's SQLite backend,
        whose cursor turns ``%s`` into ``?`` in Python on every run), the client
        connection's plain cursor instead, given statements converted once. Other
        backends keep theirs (a third-party backend's cursor may do more than convert).
        """
        if self.driver.features.can_run_plain_client_cursor:
            return connection.connection.cursor()
        return connection.create_cursor()

    def _to_client_sql(self, connection: Any, sql: str) -> str:
        client_sql = sql
        if self.driver.features.can_run_plain_client_cursor:
            client_sql = _FORMAT_MARK.sub("?", sql).replace("%%", "%")
        self._client_sql[sql] = client_sql
        return client_sql

    def _kept_cursor(
        self,
        kept: weakref.WeakKeyDictionary[Any, tuple[Any, Any]],
        connection: Any,
        new_cursor: Callable[[Any], Any],
    ) -> Any:
        """Return the client cursor kept in ``kept`` for ``connection``, opening it first."""
        connection.close_if_health_check_failed()
        connection.ensure_connection()
        raw = connection.connection
        kept_for, cursor = kept.get(connection, (None, None))
        # A client connection closed under it fails the statement (a transient error:
        # core closes the connection, and the retry gets a new one, with a new cursor).
        if kept_for is not raw:
            with connection.wrap_database_errors:  # as Django makes its cursors
                cursor = new_cursor(connection)
            kept[connection] = (raw, cursor)
        return cursor

    def forget_cursors(self) -> None:
        """Drop the kept client cursors: the next statements open new ones.

        For code that replaces :meth:`new_client_cursor` on an instance (a benchmark's
        cursor that does nothing, to time the Python around each statement).
        """
        self._shared_cursors.clear()
        self._client_cursors.clear()

    def cursor(self) -> Any:
        """Return a new Django cursor for a few statements, to use with ``with``."""
        return self.connection.cursor()
