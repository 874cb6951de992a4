"""A client process of the ``NOTIFY`` tests: waits on a real worker under gevent, or forks.

Run by ``test_notify.py`` with the worker's broker, queue and test database in the
environment; prints what it saw as JSON.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

MODE = sys.argv[1]  # "gevent" or "fork"
if MODE == "gevent":
    from gevent import monkey

    monkey.patch_all()

import django  # noqa: E402  (after gevent patches the standard library)
from django.conf import settings  # noqa: E402

settings.configure(
    INSTALLED_APPS=["django_celery_results"],
    DATABASES={
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": "127.0.0.1",
            "PORT": 5432,
            "USER": "postgres",
            "NAME": os.environ["NOTIFY_CLIENT_DATABASE"],
        }
    },
    USE_TZ=True,
    DJANGO_CELERY_RESULTS={"NOTIFY": True},
)
django.setup()

from celery import Celery  # noqa: E402
from django.db import connections  # noqa: E402

from django_celery_results.backends import hub as notify  # noqa: E402
from django_celery_results.drivers import driver_for_model  # noqa: E402
from django_celery_results.models import TaskResult  # noqa: E402

app = Celery("notify-client", set_as_current=False)
app.conf.update(
    broker_url=os.environ["NOTIFY_CLIENT_BROKER"],
    result_backend="django-db",
    task_default_queue=os.environ["NOTIFY_CLIENT_QUEUE"],
)
TIMEOUT = 60


def add(x: int, y: int) -> int:
    return int(app.send_task("demo_app.tasks.add", args=(x, y)).get(timeout=TIMEOUT))


def hub() -> notify.Hub:
    return notify.hub_for(driver_for_model(TaskResult))


def run_gevent() -> dict[str, object]:
    import gevent

    jobs = [gevent.spawn(add, i, i) for i in range(6)]
    gevent.joinall(jobs, timeout=TIMEOUT)
    return {
        "results": [job.value for job in jobs],
        "async": app.backend.is_async,
        "hub_thread": type(hub()._thread).__module__,
    }


def run_fork() -> dict[str, object]:
    before = add(1, 1)
    parent_hub = hub()
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the parent's connections are not ours to use or close
        kept = [c.connection for c in connections.all()]
        for connection in connections.all():
            connection.connection = None
        try:
            seen: dict[str, Any] = {
                "child": add(2, 2),
                "new_hub": hub() is not parent_hub,
                "kept": len(kept),
            }
        except BaseException as exc:  # reported to the parent
            seen = {"error": repr(exc)}
        os.write(writer, json.dumps(seen).encode())
        os._exit(0)
    os.close(writer)
    _, status = os.waitpid(pid, 0)
    child = json.loads(os.read(reader, 65536).decode())
    return {
        "before": before,
        "child": child,
        "child_status": status,
        "after": add(3, 3),  # the parent's listener survived the child
        "same_hub": hub() is parent_hub,
    }


try:
    print(json.dumps(run_gevent() if MODE == "gevent" else run_fork()))
finally:
    notify.close_hubs()
    connections.close_all()
