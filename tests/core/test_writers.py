"""The background writers' one life cycle, wired by ``AppConfig.ready()``."""

from __future__ import annotations

import subprocess
import sys

from celery.signals import before_task_publish, worker_process_shutdown

from django_celery_results import batching, pending, writers


def ours(signal: object) -> list[object]:
    lookups = [key for key, _ in signal.receivers]  # type: ignore[attr-defined]
    return [key for key in lookups if "django_celery_results" in str(key[0])]


def test_ready_installs_both_writers_once() -> None:
    assert [writer.name for writer in writers._writers] == ["batching", "pending"]
    writers.install(batching.WRITER, pending.WRITER)  # a second ready() adds nothing
    assert [writer.name for writer in writers._writers] == ["batching", "pending"]
    assert len(ours(worker_process_shutdown)) == 1
    assert len(ours(before_task_publish)) == 1


def test_importing_wires_nothing() -> None:
    """Without the app's ready(), importing the writers connects no signal."""
    code = """
import django
from django.conf import settings
settings.configure(INSTALLED_APPS=[], DATABASES={})
django.setup()
from celery.signals import before_task_publish, worker_process_shutdown
import django_celery_results.batching, django_celery_results.pending
from django_celery_results import writers
print(len(before_task_publish.receivers), len(worker_process_shutdown.receivers),
      len(writers._writers))
"""
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.split() == ["0", "0", "0"]
