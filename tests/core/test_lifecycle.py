"""Every process hook is wired by ``lifecycle.install()``, from ``AppConfig.ready()`` only."""

from __future__ import annotations

import json
import subprocess
import sys

#: Imports every module of the app with Celery's signal ``connect``, ``os.register_at_fork``
#: and ``atexit.register`` recorded, and prints which module of ours called each.
PROBE = r"""
import atexit, json, os, pkgutil, sys, importlib
from celery.utils.dispatch import signal as celery_signal

calls = []

def caller():
    name = sys._getframe(2).f_globals.get("__name__", "")  # who called the hook's function
    return name if name.startswith("django_celery_results") else None

def recording(kind, real):
    def record(*args, **kwargs):
        module = caller()
        if module:
            calls.append([kind, module])
        return real(*args, **kwargs)
    return record

celery_signal.Signal.connect = recording("signal", celery_signal.Signal.connect)
os.register_at_fork = recording("fork", os.register_at_fork)
atexit.register = recording("atexit", atexit.register)

import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
if sys.argv[1] == "import":  # the app loads, but its ready() does nothing
    from django_celery_results.apps import CeleryResultConfig
    CeleryResultConfig.ready = lambda self: None
django.setup()
import django_celery_results
for info in pkgutil.walk_packages(django_celery_results.__path__, "django_celery_results."):
    if ".migrations" in info.name:
        continue
    if django.VERSION < (6, 0) and info.name.startswith("django_celery_results.tasks."):
        continue  # django.tasks arrived in Django 6
    importlib.import_module(info.name)
print(json.dumps(calls))
"""


def probe(phase: str) -> list[list[str]]:
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, phase],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return [list(call) for call in json.loads(completed.stdout.strip().splitlines()[-1])]


def test_importing_the_app_s_modules_wires_nothing() -> None:
    assert probe("import") == []


def test_every_hook_is_wired_by_lifecycle() -> None:
    calls = probe("setup")
    assert {module for _, module in calls} == {"django_celery_results.lifecycle"}
    kinds = sorted(kind for kind, _ in calls)
    # queued rows, notification consumers, the background threads' fork guard
    assert kinds.count("fork") == 3
    assert kinds.count("atexit") == 1
    # publish, worker_ready (checks, history), beat_init, worker_shutdown (history, the
    # registry's stop), worker_init (heartbeats), worker_process_shutdown; Django 6 adds three.
    assert kinds.count("signal") in (8, 11)
