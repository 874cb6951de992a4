"""The databases the benchmark runs on: throwaway databases and the raw-limit statements.

Each server makes a fresh database per contender, hands ``bench/workloads.py`` the Django
settings to reach it, and connects the raw-limit client (psycopg 3, MySQLdb, sqlite3) in
autocommit mode, with the single-statement upsert and chord decrement that client runs.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

#: The workloads script, which also migrates a database (``BENCH_MIGRATE_ONLY``).
WORKLOADS = Path(__file__).resolve().parent / "workloads.py"
TABLE = "django_celery_results_taskresult"
COUNTER = "django_celery_results_chordcounter"
COLUMNS = (
    "task_id, status, content_type, content_encoding, result, traceback, meta,"
    " periodic_task_name, task_name, task_args, task_kwargs, worker, date_created,"
    " date_started, date_done"
)
#: Columns an update replaces (all but the id, date_created and date_started).
REPLACED = [*[c.strip() for c in COLUMNS.split(",")][1:12], "date_done"]


class Server:
    """A database server the benchmark makes throwaway databases on."""

    label = ""
    engine = ""
    #: The raw client's placeholder.
    mark = "%s"
    #: One upsert of one row, every value a parameter; a SUCCESS row is never replaced.
    upsert = ""
    #: Decrement a chord counter and read the new count, in one statement.
    decrement = ""

    def __init__(self) -> None:
        self.names: list[str] = []

    def create(self, label: str) -> str:
        """Create an empty database; return its name."""
        raise NotImplementedError

    def settings(self, name: str) -> dict[str, str]:
        """Return the BENCH_* environment that points workloads.py at ``name``."""
        return {"BENCH_ENGINE": self.engine, "BENCH_NAME": name}

    def environment(self, name: str) -> dict[str, str]:
        """Return this process's environment with :meth:`settings`, for a child process."""
        env = {**os.environ, **self.settings(name)}
        env.pop("DJANGO_SETTINGS_MODULE", None)  # the child configures Django itself
        return env

    def migrate(self, name: str) -> None:
        """Create the result tables in ``name`` (``bench/workloads.py`` migrates it)."""
        subprocess.run(
            [sys.executable, str(WORKLOADS)], env={**self.environment(name),
            "BENCH_MIGRATE_ONLY": "1"}, check=True, capture_output=True, timeout=600,
        )  # fmt: skip

    def connect(self, name: str) -> Any:
        """Return a raw DB-API connection to ``name`` in autocommit mode."""
        raise NotImplementedError

    def count(self, name: str, where: str = "") -> int:
        """Rows of the task table in ``name`` (those matching ``where``, when given)."""
        connection = self.connect(name)
        cursor = connection.cursor()
        cursor.execute(f"SELECT COUNT(*) FROM {TABLE}" + (f" WHERE {where}" if where else ""))
        (rows,) = cursor.fetchone()
        connection.close()
        return int(rows)

    def decrement_and_read(self, cursor: Any, group_id: str) -> int:
        """Run :attr:`decrement`; return the new count."""
        cursor.execute(self.decrement, [group_id])
        return int(cursor.fetchone()[0])

    def refresh_statistics(self, cursor: Any) -> None:
        """Refresh the task table's planner statistics after a seed (PostgreSQL also vacuums)."""
        if self.engine == "postgresql":
            cursor.execute(f"VACUUM ANALYZE {TABLE}")
        else:
            cursor.execute(f"ANALYZE TABLE {TABLE}")
            cursor.fetchall()

    def quiesce(self) -> None:
        """Finish the server's deferred work before a contender's turn (nothing here)."""

    def purged(self) -> int:
        """A counter of deleted rows the server has finished with (see :meth:`settle_deletes`)."""
        return 0

    def settle_deletes(self, name: str, since: int, rows: int) -> float:
        """Finish the work ``rows`` deletes on ``name`` left behind; return its seconds.

        ``since`` is :meth:`purged` before the deletes began.
        """
        return 0.0

    def drop_all(self) -> None:
        """Drop every database this server made."""

    def upsert_many(self, rows: int) -> str:
        """Return the upsert of ``rows`` rows in one statement."""
        head, _, tail = self.upsert.partition(" ON ")
        one = "(" + ", ".join([self.mark] * 15) + ")"
        head = head[: head.index("VALUES")] + "VALUES " + ", ".join([one] * rows)
        return f"{head} ON {tail}"


class Postgres(Server):
    """Throwaway databases on the local PostgreSQL server (psycopg 3)."""

    label = "PostgreSQL"
    engine = "postgresql"
    upsert = (
        f"INSERT INTO {TABLE} AS r ({COLUMNS}) VALUES ({', '.join(['%s'] * 15)}) "
        "ON CONFLICT (task_id) DO UPDATE SET "
        + ", ".join(f"{c} = EXCLUDED.{c}" for c in REPLACED)
        + ", date_started = COALESCE(r.date_started, EXCLUDED.date_started)"
        " WHERE r.status <> 'SUCCESS'"
    )
    decrement = f"UPDATE {COUNTER} SET count = count - 1 WHERE group_id = %s RETURNING count"

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__()
        import psycopg

        self.options = options
        self.admin = psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres")
        self.admin.autocommit = True

    def create(self, label: str) -> str:
        name = f"bench_{label}_{uuid.uuid4().hex[:6]}"
        self.admin.execute(f'CREATE DATABASE "{name}"')
        self.names.append(name)
        return name

    def settings(self, name: str) -> dict[str, str]:
        import json

        return {**super().settings(name), "BENCH_OPTIONS": json.dumps(self.options)}

    def connect(self, name: str) -> Any:
        import psycopg

        return psycopg.connect(host="127.0.0.1", user="postgres", dbname=name, autocommit=True)

    def quiesce(self) -> None:
        """Write every dirty page now (``CHECKPOINT``), not during the next contender."""
        self.admin.execute("CHECKPOINT")

    def settle_deletes(self, name: str, since: int, rows: int) -> float:
        """``VACUUM`` the table: the index entries of deleted rows wait for it."""
        connection = self.connect(name)
        began = time.perf_counter()
        connection.execute(f"VACUUM {TABLE}")
        connection.close()
        return time.perf_counter() - began

    def drop_all(self) -> None:
        for name in self.names:
            self.admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class MariaDB(Server):
    """Throwaway databases on the local MariaDB/MySQL server (mysqlclient)."""

    label = "MariaDB"
    engine = "mysql"
    # status is assigned last: MySQL's later assignments see the earlier ones.
    upsert = (
        f"INSERT INTO {TABLE} ({COLUMNS}) VALUES ({', '.join(['%s'] * 15)}) "
        "ON DUPLICATE KEY UPDATE "
        + ", ".join(
            f"{c} = IF(status <> 'SUCCESS', VALUES({c}), {c})" for c in REPLACED if c != "status"
        )
        + ", date_started = COALESCE(date_started, VALUES(date_started))"
        ", status = IF(status <> 'SUCCESS', VALUES(status), status)"
    )
    decrement = f"UPDATE {COUNTER} SET count = LAST_INSERT_ID(count - 1) WHERE group_id = %s"

    def __init__(self) -> None:
        super().__init__()
        self.admin = self.connect("")

    def create(self, label: str) -> str:
        name = f"bench_{label}_{uuid.uuid4().hex[:6]}"
        self.admin.cursor().execute(
            f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
        )
        self.names.append(name)
        return name

    def connect(self, name: str) -> Any:
        import MySQLdb

        connection = MySQLdb.connect(
            host="127.0.0.1", user="root", passwd="", db=name, charset="utf8mb4"
        )
        connection.autocommit(True)
        cursor = connection.cursor()
        cursor.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        return connection

    def decrement_and_read(self, cursor: Any, group_id: str) -> int:
        cursor.execute(self.decrement, [group_id])
        return int(cursor.lastrowid)

    def quiesce(self) -> None:
        """Wait (10 s at most) until InnoDB purged the old row versions left behind."""
        cursor = self.admin.cursor()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            cursor.execute("SHOW GLOBAL STATUS LIKE 'Innodb_history_list_length'")
            if int(cursor.fetchone()[1]) < 100:
                return
            time.sleep(0.1)

    def purged(self) -> int:
        """InnoDB's count of delete-marked rows purged (the monitor is switched on first)."""
        cursor = self.admin.cursor()
        cursor.execute("SET GLOBAL innodb_monitor_enable = 'purge_del_mark_records'")
        cursor.execute(
            "SELECT COUNT FROM information_schema.INNODB_METRICS "
            "WHERE NAME = 'purge_del_mark_records'"
        )
        return int(cursor.fetchone()[0])

    def settle_deletes(self, name: str, since: int, rows: int) -> float:
        """Wait until InnoDB's purge removed the deleted rows and their index entries.

        A delete only marks rows; purge removes them in the background once the deleting
        transaction commits: beside a chunked delete, during it (competing with it for
        the disk and the buffer pool); after one big ``DELETE``, all of it afterwards.
        """
        limit = 60 + rows / 5_000  # slower than purge has ever been here
        began = time.perf_counter()
        while time.perf_counter() - began < limit and self.purged() - since < rows:
            time.sleep(0.2)
        return time.perf_counter() - began

    def drop_all(self) -> None:
        for name in self.names:
            self.admin.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")


class SQLite(Server):
    """Throwaway database files in a temporary folder (the sqlite3 module)."""

    label = "SQLite"
    engine = "sqlite3"
    mark = "?"
    upsert = (
        f"INSERT INTO {TABLE} AS r ({COLUMNS}) VALUES ({', '.join(['?'] * 15)}) "
        "ON CONFLICT (task_id) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in REPLACED)
        + ", date_started = COALESCE(r.date_started, excluded.date_started)"
        " WHERE r.status <> 'SUCCESS'"
    )
    decrement = f"UPDATE {COUNTER} SET count = count - 1 WHERE group_id = ? RETURNING count"

    def __init__(self) -> None:
        super().__init__()
        self.folder = tempfile.TemporaryDirectory(prefix="dcr-bench-")

    def create(self, label: str) -> str:
        name = str(Path(self.folder.name) / f"{label}.sqlite3")
        self.names.append(name)
        return name

    def connect(self, name: str) -> Any:
        # Django's own SQLite defaults: no WAL, 5 s busy timeout.
        return sqlite3.connect(name, isolation_level=None, timeout=5, check_same_thread=False)

    def drop_all(self) -> None:
        self.folder.cleanup()


def make_server(db: str, options: dict[str, Any]) -> Server:
    """Return the server named on the command line."""
    if db == "postgres":
        return Postgres(options)
    if db == "mariadb":
        return MariaDB()
    return SQLite()
