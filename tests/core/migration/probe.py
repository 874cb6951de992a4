"""Run by the migration compatibility test in a subprocess, with either package installed.

    python probe.py upstream-0011   migrate to 0011 with upstream's package, insert rows
    python probe.py migrate         migrate to the latest migration
    python probe.py exercise        store and read results through the backend and its driver
    python probe.py upstream-use    store, read and clean up results with upstream's package
    python probe.py dump            print every row of the three tables, as JSON
    python probe.py schema          print columns and constraints of the three tables

The database comes from PROBE_ENGINE ("sqlite3" or "postgresql") and PROBE_NAME. It prints
one JSON document on stdout.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
from typing import Any

import django
from django.conf import settings

TABLES = [
    "django_celery_results_taskresult",
    "django_celery_results_groupresult",
    "django_celery_results_chordcounter",
]


def configure() -> None:
    engine = os.environ["PROBE_ENGINE"]
    database: dict[str, Any] = {
        "ENGINE": f"django.db.backends.{engine}",
        "NAME": os.environ["PROBE_NAME"],
    }
    if engine == "postgresql":
        database.update(HOST="127.0.0.1", PORT=5432, USER="postgres")
    settings.configure(
        INSTALLED_APPS=["django_celery_results"],
        DATABASES={"default": database},
        USE_TZ=True,
        DJANGO_CELERY_RESULTS_TASK_ID_MAX_LENGTH=191,
    )
    django.setup()


def upstream_0011() -> dict[str, object]:
    from django.core.management import call_command

    call_command("migrate", "django_celery_results", "0011", verbosity=0)
    from django_celery_results.models import ChordCounter, GroupResult, TaskResult

    for n in range(3):
        TaskResult.objects.create(
            task_id=f"task-{n}",
            periodic_task_name="nightly" if n == 0 else None,
            task_name="proj.add",
            task_args='"(1, 2)"',
            task_kwargs='"{}"',
            status=["SUCCESS", "FAILURE", "Progress"][n],
            worker="celery@upstream",
            content_type="application/json",
            content_encoding="utf-8",
            result=json.dumps(n),
            traceback="Traceback …" if n == 1 else None,
            meta='{"children": []}',
        )
    GroupResult.objects.create(
        group_id="group-1",
        content_type="application/json",
        content_encoding="utf-8",
        result=json.dumps([["group-1", None], [[["task-0", None], None]]]),
    )
    ChordCounter.objects.create(
        group_id="chord-1", sub_tasks=json.dumps([[["task-1", None], None]]), count=1
    )
    return {"ok": True}


def migrate() -> dict[str, object]:
    from django.core.management import call_command

    call_command("migrate", "django_celery_results", verbosity=0)
    from django.db.migrations.recorder import MigrationRecorder

    applied = MigrationRecorder.Migration.objects.filter(app="django_celery_results")
    return {"applied": sorted(applied.values_list("name", flat=True))}


def exercise() -> dict[str, object]:
    """Use the backend on the migrated database, through whichever driver serves it."""
    from celery import Celery
    from django.db import connection

    from django_celery_results.drivers import get_driver

    app = Celery("probe", set_as_current=False)
    app.conf.update(result_backend="django-db", result_extended=True)
    backend = app.backend
    backend.mark_as_started("task-0")  # upstream's SUCCESS row: a late STARTED is refused
    backend.mark_as_started("new-1")
    backend.mark_as_done("new-1", 5)
    return {
        "driver": type(get_driver(connection)).__name__,
        "task-0": backend.get_task_meta("task-0", cache=False)["status"],
        "new-1": backend.get_task_meta("new-1", cache=False)["result"],
        "progress": backend.get_task_meta("task-2", cache=False)["status"],
    }


def upstream_use() -> dict[str, object]:
    """Use upstream's backend, manager and cleanup on a database our migrations changed."""
    from datetime import timedelta

    from celery import Celery
    from django.utils import timezone

    from django_celery_results.models import TaskResult

    app = Celery("probe", set_as_current=False)
    app.conf.update(result_backend="django-db", result_extended=True)
    backend = app.backend
    backend.mark_as_started("upstream-1")
    backend.mark_as_done("upstream-1", 7)
    TaskResult.objects.store_result(
        "application/json", "utf-8", "upstream-2", "3", "SUCCESS", task_name="proj.add"
    )
    TaskResult.objects.filter(task_id="upstream-2").update(
        date_done=timezone.now() - timedelta(days=3)
    )
    TaskResult.objects.delete_expired(timedelta(days=1))
    return {
        "upstream-1": backend.get_task_meta("upstream-1", cache=False)["result"],
        "ours": backend.get_task_meta("ours-1", cache=False)["status"],
        "left": sorted(TaskResult.objects.values_list("task_id", flat=True)),
    }


def ours_write() -> dict[str, object]:
    """Write a row with our package, queue and retries included."""
    from celery import Celery
    from celery.app.task import Context

    app = Celery("probe", set_as_current=False)
    app.conf.update(result_backend="django-db", result_extended=True)
    request = Context(
        id="ours-1", task="proj.add", retries=2, delivery_info={"routing_key": "billing"}
    )
    app.backend.store_result("ours-1", 1, "SUCCESS", request=request)
    from django_celery_results.models import TaskResult

    row = TaskResult.objects.get(task_id="ours-1")
    return {"queue": row.queue, "retries": row.retries}


def dump() -> dict[str, object]:
    from django.db import connection

    rows: dict[str, object] = {}
    with connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute(f"SELECT * FROM {table} ORDER BY id")
            names = [column[0] for column in cursor.description]
            rows[table] = [dict(zip(names, map(plain, row), strict=True)) for row in cursor]
    return rows


def plain(value: object) -> object:
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    return value


def schema() -> dict[str, object]:
    from django.db import connection

    described: dict[str, object] = {}
    with connection.cursor() as cursor:
        for table in TABLES:
            columns = {
                column.name: [str(column.type_code), column.null_ok, column.internal_size]
                for column in connection.introspection.get_table_description(cursor, table)
            }
            constraints = {
                name: {key: value for key, value in details.items() if key != "definition"}
                for name, details in connection.introspection.get_constraints(
                    cursor, table
                ).items()
            }
            described[table] = {"columns": columns, "constraints": constraints}
    return described


if __name__ == "__main__":
    configure()
    command = {
        "upstream-0011": upstream_0011,
        "migrate": migrate,
        "exercise": exercise,
        "upstream-use": upstream_use,
        "ours-write": ours_write,
        "dump": dump,
        "schema": schema,
    }
    print(json.dumps(command[sys.argv[1]](), sort_keys=True, default=str))
