"""A database made by upstream django-celery-results 2.5.1 migrates forward with ours.

Upstream 2.3 to 2.5.1 leave a database at migration 0011. The test installs 2.5.1 from PyPI
into a throwaway virtualenv (cached between runs), lets it migrate a fresh database to
0011 and write rows into all three tables, then runs our ``migrate`` on it and checks
that every row is intact and the schema equals a fresh install of ours.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
import venv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.databases import HOW_TO_START, reachable, strict

PROBE = Path(__file__).with_name("probe.py")
UPSTREAM = "django-celery-results==2.5.1"
UPSTREAM_REQUIREMENTS = [UPSTREAM, "Django>=5.2,<5.3", "celery>=5.5,<6", "psycopg[binary]>=3.2"]
LATEST_UPSTREAM_REQUIREMENTS = [
    "django-celery-results==2.6.0",
    "Django>=5.2,<5.3",
    "celery>=5.5,<6",
    "psycopg[binary]>=3.2",
]
DRIVERS = {"sqlite3": "GenericDriver", "postgresql": "PostgresDriver"}
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "django-celery-results"


def python_with(folder: Path, requirements: list[str]) -> Path:
    """A virtualenv's Python with ``requirements`` installed (built once, then reused)."""
    python = folder / "bin" / "python"
    marker = folder / "installed.json"
    if not (marker.exists() and json.loads(marker.read_text()) == requirements):
        venv.EnvBuilder(clear=True, with_pip=True).create(folder)
        subprocess.run(
            [python, "-m", "pip", "install", "--quiet", *requirements],
            check=True,
            timeout=600,
        )
        marker.write_text(json.dumps(requirements))
    return python


@pytest.fixture(scope="session")
def upstream_python() -> Path:
    """A Python with upstream 2.5.1 installed (its migrations stop at 0011)."""
    return python_with(CACHE / "upstream-2.5.1", UPSTREAM_REQUIREMENTS)


@pytest.fixture(scope="session")
def latest_upstream_python() -> Path:
    """A Python with upstream 2.6.0 installed (its migrations stop at 0014)."""
    return python_with(CACHE / "upstream-2.6.0-probe", LATEST_UPSTREAM_REQUIREMENTS)


def probe(python: Path, command: str, engine: str, name: str) -> Any:
    """Run one probe command in a subprocess and return its JSON output."""
    env = {**os.environ, "PROBE_ENGINE": engine, "PROBE_NAME": name}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    completed = subprocess.run(
        [str(python), str(PROBE), command],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    return json.loads(completed.stdout)


@pytest.fixture(params=["sqlite3", "postgresql"])
def databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """(engine, upstream-made database, fresh database) names, dropped afterwards."""
    engine: str = request.param
    if engine == "sqlite3":
        yield engine, str(tmp_path / "upstream.sqlite3"), str(tmp_path / "fresh.sqlite3")
        return
    if not (strict() or reachable("127.0.0.1", 5432)):
        pytest.skip(f"PostgreSQL is not reachable; start it with: {HOW_TO_START['postgres']}")
    import psycopg

    names = [f"dcr_compat_{kind}_{uuid.uuid4().hex[:8]}" for kind in ("upstream", "fresh")]
    with psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres") as admin:
        admin.autocommit = True
        for name in names:
            admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield engine, names[0], names[1]
        finally:
            for name in names:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_upstream_database_migrates_forward(
    upstream_python: Path, databases: tuple[str, str, str]
) -> None:
    engine, upstream_db, fresh_db = databases
    ours = Path(sys.executable)

    probe(upstream_python, "upstream-0011", engine, upstream_db)
    before = probe(upstream_python, "dump", engine, upstream_db)
    assert len(before["django_celery_results_taskresult"]) == 3

    applied = probe(ours, "migrate", engine, upstream_db)["applied"]
    assert applied[-11:] == [
        "0012_taskresult_date_started",
        "0013_taskresult_django_cele_periodi_1993cf_idx",
        "0014_alter_taskresult_status",
        "0015_taskresult_retries_queue",
        "0016_taskresult_terminate_permission",
        "0017_history",
        "0018_taskresult_history_indexes",
        "0019_history_backlog",
        "0020_history_tiers",
        "0021_worker_registry",
        "0022_admin_operations",
    ]
    after = probe(ours, "dump", engine, upstream_db)
    for table, rows in before.items():
        for old, new in zip(rows, after[table], strict=True):
            assert {key: new[key] for key in old} == old, table
    assert {row["date_started"] for row in after["django_celery_results_taskresult"]} == {None}

    probe(ours, "migrate", engine, fresh_db)
    assert probe(ours, "schema", engine, upstream_db) == probe(ours, "schema", engine, fresh_db)

    # The upstream-made database keeps working, through the vendor driver where there is one.
    used = probe(ours, "exercise", engine, upstream_db)
    assert used == {
        "driver": DRIVERS[engine],
        "task-0": "SUCCESS",
        "new-1": 5,
        "progress": "Progress",
    }


def test_upstream_keeps_working_after_our_migrations(
    latest_upstream_python: Path, databases: tuple[str, str, str]
) -> None:
    """Our 0015 adds nullable columns, 0016 a permission: upstream 2.6.0's code still works."""
    engine, database, _ = databases
    ours = Path(sys.executable)
    assert probe(ours, "migrate", engine, database)["applied"][-8:] == [
        "0015_taskresult_retries_queue",
        "0016_taskresult_terminate_permission",
        "0017_history",
        "0018_taskresult_history_indexes",
        "0019_history_backlog",
        "0020_history_tiers",
        "0021_worker_registry",
        "0022_admin_operations",
    ]
    assert probe(ours, "ours-write", engine, database) == {"queue": "billing", "retries": 2}
    used = probe(latest_upstream_python, "upstream-use", engine, database)
    assert used == {
        "upstream-1": 7,
        "ours": "SUCCESS",
        "left": ["ours-1", "upstream-1"],
    }
    # Our package still reads what upstream wrote, with NULL in the columns it ignores.
    after = probe(ours, "dump", engine, database)["django_celery_results_taskresult"]
    upstream_row = next(r for r in after if r["task_id"] == "upstream-1")
    assert (upstream_row["queue"], upstream_row["retries"]) == (None, None)
