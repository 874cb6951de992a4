"""Every process hook of the app, wired in one place: Celery's signals and fork handlers.

``AppConfig.ready()`` calls :func:`install`; importing a module wires nothing (Django's
own ``setting_changed`` receivers aside). What is wired, and why:

- ``before_task_publish``: the PENDING row of a task being sent (``TRACK_PENDING``);
- ``worker_ready`` and ``beat_init``: the startup checks, logged;
- ``worker_ready`` and ``worker_shutdown``: the history's catch-up thread of a worker
  that stores results with ``django-db`` (``HISTORY_INTERVAL``);
- ``worker_init``: the worker registry's bootstep and this life's id, in such a worker
  (``WORKER_HEARTBEAT``); ``worker_shutdown``: the worker marked stopped, once its pool
  is done;
- before task results are deleted (``TaskResult.objects.delete_expired``): a catch-up;
- a fork: it waits for the background threads' database step under way
  (``forkguard``); the child forgets its parent's queued rows and notification consumers;
- interpreter exit and ``worker_process_shutdown``: queued rows are written (a prefork
  child leaves with ``os._exit``, past ``atexit``);
- ``task_success``, ``task_failure``, ``task_revoked`` (Django 6+): ``django.tasks``'
  ``task_finished`` signal.
"""

from __future__ import annotations

import atexit
import os
import threading
from typing import Any

import django
from celery.signals import (
    beat_init,
    before_task_publish,
    task_failure,
    task_revoked,
    task_success,
    worker_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutdown,
)

from . import batching, checks, forkguard, managers, pending, writers
from .backends import notify, rows
from .backends.database import DatabaseBackend
from .conf import app_settings
from .history import keeper
from .history.rollup import catch_up
from .workers import heartbeat, life

#: Every receiver's ``dispatch_uid`` starts with this, so a second install adds nothing.
UID = "django_celery_results"

_installed = False
_lock = threading.Lock()


def install() -> None:
    """Wire the app's process hooks (once per process; later calls do nothing)."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    writers.register(batching.WRITER, pending.WRITER)
    before_task_publish.connect(rows.record_pending, dispatch_uid=f"{UID}.pending", weak=False)
    for signal in (worker_ready, beat_init):
        signal.connect(checks.log_at_start, dispatch_uid=f"{UID}.checks", weak=False)
    # Two handlers, so that one failing does not keep the other from running.
    worker_ready.connect(start_history, dispatch_uid=f"{UID}.history", weak=False)
    worker_shutdown.connect(stop_history, dispatch_uid=f"{UID}.history", weak=False)
    worker_init.connect(add_heartbeats, dispatch_uid=f"{UID}.heartbeat", weak=False)
    worker_shutdown.connect(
        heartbeat.stop_after_shutdown, dispatch_uid=f"{UID}.heartbeat", weak=False
    )
    managers.BEFORE_DELETE.append(count_before_delete)
    os.register_at_fork(after_in_child=writers.forget_all)
    os.register_at_fork(after_in_child=notify.forget_in_child)
    # A fork waits for a background thread's database step (see forkguard).
    os.register_at_fork(
        before=forkguard.before_fork,
        after_in_parent=forkguard.after_fork_in_parent,
        after_in_child=forget_threads_in_child,
    )
    atexit.register(writers.flush_all, writers.EXIT_TIMEOUT)
    worker_process_shutdown.connect(
        flush_on_worker_shutdown, dispatch_uid=f"{UID}.writers", weak=False
    )
    if django.VERSION >= (6, 0):
        from .tasks import runner

        for signal in (task_success, task_failure):
            signal.connect(runner.on_outcome, dispatch_uid=f"{UID}.tasks", weak=False)
        task_revoked.connect(runner.on_revoked, dispatch_uid=f"{UID}.tasks", weak=False)


def start_history(sender: Any = None, **kwargs: Any) -> None:
    """Start the history's thread in a worker that stores results with ``django-db``."""
    app = getattr(sender, "app", None)
    if app is not None and isinstance(app.backend, DatabaseBackend):
        keeper.start(app_settings().HISTORY_INTERVAL)


def stop_history(**kwargs: Any) -> None:
    """Stop the history's thread at the worker's shutdown."""
    keeper.stop()


def add_heartbeats(sender: Any = None, **kwargs: Any) -> None:
    """Add the registry's bootstep to a worker that stores results with ``django-db``.

    ``worker_init`` comes before the worker reads its steps, and names the worker's app.
    """
    app = getattr(sender, "app", None)
    if app is None or not isinstance(app.backend, DatabaseBackend):
        return
    if app_settings().WORKER_HEARTBEAT > 0:
        life.begin()  # before the pool forks: every process's STARTED rows carry it
        app.steps["worker"].add(heartbeat.HeartbeatStep)


def forget_threads_in_child() -> None:
    """A forked child runs none of its parent's threads; its copies of their locks go."""
    forkguard.after_fork_in_child()
    keeper.after_fork_in_child()


def count_before_delete(alias: str) -> None:
    """Count every row into the history before rows are deleted."""
    catch_up(alias, wait=True)


def flush_on_worker_shutdown(**kwargs: Any) -> None:
    """Write what is queued before a prefork worker child exits."""
    writers.flush_all(writers.EXIT_TIMEOUT)
