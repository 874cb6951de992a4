"""A dedicated autocommit psycopg connection that ``LISTEN``s for finished tasks."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import sql

from django_celery_results.drivers import ListenerLost, NotificationsUnavailable

#: How long :meth:`Listener.connect` waits for its own probe notification.
PROBE_SECONDS = 2.0


class Listener:
    """Wait for the task ids announced on one channel, on a connection of its own.

    Never Django's connection of the thread: a ``LISTEN`` lasts as long as its session,
    and Django closes and reopens its connections between requests. Opened from the
    alias's settings, in autocommit (a notification is only delivered between
    transactions). Not thread-safe: one thread waits on it (Celery's drainer).
    """

    def __init__(self, params: Mapping[str, Any], channel: str) -> None:
        self.params = dict(params)
        self.channel = channel
        self.connection: psycopg.Connection[Any] | None = None
        #: The payload of our own probe, never taken for a task id.
        self._probe = f"probe-{uuid.uuid4()}"

    def connect(self) -> None:
        """Open the connection, ``LISTEN``, and prove a notification comes back.

        Through a pooler in transaction mode (PgBouncer's ``pool_mode = transaction``),
        the ``LISTEN`` and the wait may land on different server sessions, so our own
        probe never arrives: :class:`NotificationsUnavailable` says so, and clients poll.
        """
        self.close()
        try:
            connection = psycopg.connect(**self.params, autocommit=True)
        except psycopg.Error as exc:
            raise ListenerLost(f"cannot open a connection to listen on: {exc}") from exc
        try:
            connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
            connection.execute("SELECT pg_notify(%s, %s)", [self.channel, self._probe])
            arrived = any(
                notice.payload == self._probe
                for notice in connection.notifies(timeout=PROBE_SECONDS, stop_after=1)
            )
        except psycopg.OperationalError as exc:
            connection.close()
            raise ListenerLost(f"the connection to listen on broke: {exc}") from exc
        except psycopg.Error as exc:  # e.g. a read-only standby refuses LISTEN
            connection.close()
            raise NotificationsUnavailable(f"PostgreSQL refused to listen: {exc}") from exc
        except BaseException:
            connection.close()
            raise
        if not arrived:
            connection.close()
            raise NotificationsUnavailable(
                f"a notification on {self.channel!r} did not come back to its own session "
                "(a transaction-mode pooler such as PgBouncer between the client and "
                "PostgreSQL?)"
            )
        self.connection = connection

    def wait(self, timeout: float) -> list[str]:
        """Return the task ids announced within ``timeout`` seconds (all that arrived).

        Raises :class:`ListenerLost` when the connection broke (or cannot be opened
        again): the caller reads every pending result, and the next call reconnects.
        """
        try:
            if self.connection is None:
                self.connect()
            assert self.connection is not None
            notices = list(self.connection.notifies(timeout=timeout, stop_after=1))
            # stop_after=1 returns with the notices of one packet; take what else arrived.
            notices += self.connection.notifies(timeout=0)
        except psycopg.Error as exc:
            self.close()
            raise ListenerLost(f"the connection listening on {self.channel!r} broke: {exc}") from (
                exc
            )
        return [notice.payload for notice in notices if notice.payload != self._probe]

    def close(self) -> None:
        """Close the connection (a later :meth:`wait` opens it again)."""
        connection, self.connection = self.connection, None
        if connection is not None:
            with contextlib.suppress(psycopg.Error):  # already broken: nothing to close
                connection.close()
