"""Which of PostgreSQL's errors a retry on a fresh connection can make good: SQLSTATEs."""

from __future__ import annotations

import psycopg

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


def is_transient(error: BaseException) -> bool | None:
    """Is psycopg's ``error`` transient (:data:`TRANSIENT_SQLSTATES`)? None: not psycopg's."""
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
