"""Batched writes at interpreter exit: a queued state is written before the process ends."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import uuid
from contextlib import closing
from pathlib import Path

import pytest

SCRIPT = """
import sys

if sys.argv[3] == "gevent":
    from gevent import monkey

    monkey.patch_all()

import django
from django.conf import settings

settings.configure(
    INSTALLED_APPS=["django_celery_results"],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": sys.argv[1]}},
    USE_TZ=True,
    DJANGO_CELERY_RESULTS={"BATCH_WRITES": {"max_delay_ms": 60000}},
)
django.setup()

from celery import Celery
from django.core.management import call_command

call_command("migrate", verbosity=0)
app = Celery("exit", set_as_current=False)
app.conf.result_backend = "django-db"
app.backend.store_result(sys.argv[2], {"step": 1}, "PROGRESS")
# The process ends here, long before max_delay_ms: atexit writes the queue.
"""


@pytest.mark.parametrize("concurrency", ["threads", "gevent"])
def test_queued_state_is_written_at_exit(tmp_path: Path, concurrency: str) -> None:
    # gevent: a --pool=gevent worker's flusher is a greenlet, and exits the same way.
    database, task_id = tmp_path / "exit.sqlite3", str(uuid.uuid4())
    command = [sys.executable, "-c", SCRIPT, str(database), task_id, concurrency]
    subprocess.run(command, check=True, timeout=120)
    # closing(): a connection's own ``with`` only commits, and Python 3.13 warns when an
    # unclosed connection is collected.
    with closing(sqlite3.connect(database)) as connection:
        rows = connection.execute(
            "SELECT status, result FROM django_celery_results_taskresult WHERE task_id = ?",
            (task_id,),
        ).fetchall()
    assert rows == [("PROGRESS", '{"step": 1}')]
