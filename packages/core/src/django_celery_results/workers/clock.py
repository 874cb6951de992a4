"""The database's clock in UTC, as the registry stores and compares every time.

Django's ``Now()`` is ``CURRENT_TIMESTAMP`` on MySQL and MariaDB: the session's time
zone, which Django leaves at the server's. Stored there, a heartbeat would be local time
beside columns Django stores in UTC, and a daylight-saving change would age every
heartbeat by an hour at once. ``UTC_TIMESTAMP(6)`` is the server's clock in UTC, as
PostgreSQL's ``now()`` (a ``timestamptz``) and SQLite's ``CURRENT_TIMESTAMP`` already are.
"""

from __future__ import annotations

from typing import Any

from django.db.models.functions import Now


class DatabaseNow(Now):
    """``Now()``, in UTC on every database."""

    def as_mysql(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        """``UTC_TIMESTAMP(6)``: microseconds, as Django's ``Now()`` asks on MySQL."""
        return self.as_sql(compiler, connection, template="UTC_TIMESTAMP(6)", **extra_context)
