"""psycopg cursors for the driver: parameters bound on the server, dates loaded in C."""

from __future__ import annotations

import functools
from datetime import datetime, tzinfo
from typing import Any

import psycopg
from psycopg.adapt import Loader

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


def server_binding_cursor(connection: Any) -> psycopg.Cursor[Any]:
    """A psycopg cursor on a Django connection's client connection, loading dates in C.

    psycopg's loader gives the session's zone: when that is already Django's (UTC, the
    usual case), it is registered as it is, without a Python step per value.
    """
    cursor: psycopg.Cursor[Any] = psycopg.Cursor(connection.connection)
    zone = connection.timezone
    native = _TIMESTAMPTZ_LOADER
    assert native is not None  # psycopg always has one
    loaded = native(_TIMESTAMPTZ_OID, cursor).load(b"2000-01-01 00:00:00+00")
    loader = native if loaded.tzinfo is zone else _timestamptz_loader(zone)
    cursor.adapters.register_loader(_TIMESTAMPTZ_OID, loader)
    return cursor
