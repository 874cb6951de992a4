"""The database legs of the test run: SQLite always, PostgreSQL and MariaDB when reachable."""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path
from typing import Any

#: Set to 1 (CI does) to make an unreachable PostgreSQL or MariaDB fail the run, not skip.
STRICT_ENV = "DJANGO_CELERY_RESULTS_STRICT_DATABASES"

HOW_TO_START = {
    "postgres": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "mysql": "start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd",
}

SQLITE_FILE = Path(tempfile.gettempdir()) / f"dcr-tests-{os.getpid()}.sqlite3"

#: Appended to every server test database name, so two checkouts can run tests at once.
SUFFIX = os.environ.get("DCR_TEST_DB_SUFFIX", "")

SERVERS: dict[str, dict[str, Any]] = {
    "postgres": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": os.environ.get("DCR_POSTGRES_HOST", "127.0.0.1"),
        "PORT": int(os.environ.get("DCR_POSTGRES_PORT", "5432")),
        # Existing databases, so connections outside the test run work; tests use test_<NAME>.
        "NAME": "postgres",
        "USER": os.environ.get("DCR_POSTGRES_USER", "postgres"),
        "PASSWORD": os.environ.get("DCR_POSTGRES_PASSWORD", ""),
        # Each leg is set up on its own; none waits for the SQLite one.
        "TEST": {"NAME": f"test_postgres{SUFFIX}", "DEPENDENCIES": []},
    },
    "mysql": {
        "ENGINE": "django.db.backends.mysql",
        "HOST": os.environ.get("DCR_MYSQL_HOST", "127.0.0.1"),
        "PORT": int(os.environ.get("DCR_MYSQL_PORT", "3306")),
        "NAME": "test",
        "USER": os.environ.get("DCR_MYSQL_USER", "root"),
        "PASSWORD": os.environ.get("DCR_MYSQL_PASSWORD", ""),
        "OPTIONS": {"charset": "utf8mb4"},
        "TEST": {
            "NAME": f"test_test{SUFFIX}",
            "CHARSET": "utf8mb4",
            "COLLATION": "utf8mb4_unicode_ci",
            "DEPENDENCIES": [],
        },
    },
}
LABELS = {"postgres": "PostgreSQL", "mysql": "MariaDB/MySQL"}


def variants(alias: str, config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Return extra aliases to the same server, with the connection options drivers support.

    PostgreSQL: Django's psycopg connection pool, and server-side parameter binding.
    Each has a test database of its own.
    """
    if alias != "postgres":
        return {}
    options = {
        "pool": {"pool": {"min_size": 1, "max_size": 8}},
        "ssb": {"server_side_binding": True},
    }
    return {
        f"postgres_{name}": {
            **config,
            "OPTIONS": option,
            "TEST": {**config["TEST"], "NAME": f"test_dcr_{name}{SUFFIX}"},
        }
        for name, option in options.items()
    }


def strict() -> bool:
    """Return True when every database leg must run (CI)."""
    return os.environ.get(STRICT_ENV, "") not in ("", "0")


def reachable(host: str, port: int) -> bool:
    """Return True when something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def database_legs() -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Return (DATABASES, skipped aliases with the reason and how to start the server)."""
    databases: dict[str, dict[str, Any]] = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(SQLITE_FILE),
            # A file, not :memory:, so threads and processes share the test database.
            "TEST": {"NAME": str(SQLITE_FILE)},
        }
    }
    skipped: dict[str, str] = {}
    for alias, config in SERVERS.items():
        if strict() or reachable(config["HOST"], config["PORT"]):
            databases[alias] = config
            databases.update(variants(alias, config))
        else:
            skipped[alias] = (
                f"{LABELS[alias]} is not reachable at {config['HOST']}:{config['PORT']}; "
                f"start it with: {HOW_TO_START[alias]}"
            )
    return databases, skipped
