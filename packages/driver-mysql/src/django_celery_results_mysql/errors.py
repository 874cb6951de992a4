"""Which of MySQL's and MariaDB's errors a retry on a fresh connection can make good."""

from __future__ import annotations

import MySQLdb

#: Server and client error codes after which the same statement can succeed on a fresh
#: connection, and why (docs/operating.md's table is checked against this).
TRANSIENT_CODES: dict[int, str] = {
    2002: "can't connect through the socket: the server is down or restarting",
    2003: "can't connect to the server: refused, the server is down or restarting",
    2006: "server has gone away",
    2013: "lost connection during a query",
    2055: "lost connection at reading (MySQL)",
    4031: "disconnected by the server for inactivity (MySQL 8)",
    1927: "connection killed (MariaDB: KILL, or the server shutting down)",
    1053: "server shutdown in progress",
    1040: "too many connections (max_connections)",
    1203: "the user has more than max_user_connections active connections",
    1226: "the user exceeded a resource limit (MAX_USER_CONNECTIONS and friends)",
    1205: "lock wait timeout exceeded (innodb_lock_wait_timeout)",
    1213: "deadlock found",
    1020: "record has changed since last read (MariaDB's snapshot isolation)",
    1290: "the server runs with --read-only (a replica after a failover)",
    1792: "cannot execute in a read-only transaction",
    1836: "running in read-only mode",
}
#: Error codes that are not retried, and why (docs/operating.md's table lists them too).
NOT_RETRIED_CODES: dict[int, str] = {
    1045: "access denied: a wrong user or password",
    1049: "unknown database",
    1406: "data too long for a column: a value the column cannot hold",
    1062: "duplicate entry",
    1146: "table doesn't exist: not migrated",
    1142: "command denied: a missing privilege",
    3024: "max_execution_time exceeded (MySQL 8): it would run as long again",
    1969: "max_statement_time exceeded (MariaDB): it would run as long again",
}


def is_transient(error: BaseException) -> bool | None:
    """Is mysqlclient's ``error`` transient (:data:`TRANSIENT_CODES`)? None: not its error."""
    if isinstance(error, MySQLdb.InterfaceError):
        return True  # the client's connection object is closed
    if isinstance(error, MySQLdb.Error) and error.args:
        return bool(error.args[0] in TRANSIENT_CODES)
    return None
