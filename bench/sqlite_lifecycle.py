"""Single-process task lifecycle on SQLite: this project vs raw sqlite3 upserts.

Usage: uv run python bench/sqlite_lifecycle.py [--tasks N] [--repeats R]

Both sides write the same table file with Django's default SQLite settings: ours through
``app.backend`` (STARTED then SUCCESS with ``result_extended``), the raw limit as one
``INSERT … ON CONFLICT DO UPDATE`` per state change through the sqlite3 module.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup_django(path: Path) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.sqlite_settings"
    os.environ["BENCH_SQLITE_PATH"] = str(path)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def run_ours(tasks: int) -> float:
    from celery import Celery
    from celery.app.task import Context

    app = Celery("bench", set_as_current=False)
    app.conf.update(result_backend="django-db", result_extended=True)
    backend = app.backend
    ids = [str(uuid.uuid4()) for _ in range(tasks)]
    start = time.perf_counter()
    for task_id in ids:
        request = Context(
            id=task_id,
            task="bench.add",
            args=[1, 2],
            kwargs={},
            argsrepr="(1, 2)",
            kwargsrepr="{}",
            hostname="celery@bench",
            delivery_info={"routing_key": "celery"},
        )
        backend.store_result(
            task_id, {"pid": 1, "hostname": "celery@bench"}, "STARTED", request=request
        )
        backend.store_result(task_id, 3, "SUCCESS", request=request)
    return tasks / (time.perf_counter() - start)


UPSERT = """
INSERT INTO django_celery_results_taskresult
  (task_id, status, content_type, content_encoding, result, date_done, traceback, meta,
   periodic_task_name, task_name, task_args, task_kwargs, worker, date_created, date_started)
VALUES (?, ?, 'application/json', 'utf-8', ?, ?, NULL, '{"children": []}', NULL,
        'bench.add', '"(1, 2)"', '"{}"', 'celery@bench', ?, ?)
ON CONFLICT (task_id) DO UPDATE SET
  status = excluded.status, result = excluded.result, date_done = excluded.date_done,
  meta = excluded.meta, task_name = excluded.task_name, task_args = excluded.task_args,
  task_kwargs = excluded.task_kwargs, worker = excluded.worker,
  date_started = COALESCE(django_celery_results_taskresult.date_started, excluded.date_started)
WHERE django_celery_results_taskresult.status <> 'SUCCESS'
"""


def run_raw(path: Path, tasks: int) -> float:
    connection = sqlite3.connect(path, isolation_level=None)
    ids = [str(uuid.uuid4()) for _ in range(tasks)]
    start = time.perf_counter()
    for task_id in ids:
        now = time.strftime("%Y-%m-%d %H:%M:%S")
        started = json.dumps({"pid": 1, "hostname": "celery@bench"})
        connection.execute(UPSERT, (task_id, "STARTED", started, now, now, now))
        connection.execute(UPSERT, (task_id, "SUCCESS", "3", now, now, None))
    elapsed = time.perf_counter() - start
    connection.close()
    return tasks / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.sqlite3"
        setup_django(path)
        run_ours(50)  # warm up imports, the driver and the connection
        ours, raw, ratios = [], [], []
        for _ in range(args.repeats):
            # Interleaved rounds, so both sides see the same disk and cache conditions.
            ours.append(run_ours(args.tasks))
            raw.append(run_raw(path, args.tasks))
            ratios.append(ours[-1] / raw[-1])
        print(f"tasks per round: {args.tasks}, rounds: {args.repeats}")
        print(f"ours (generic driver): {statistics.median(ours):8.0f} tasks/s (median)")
        print(f"raw sqlite3 upserts:   {statistics.median(raw):8.0f} tasks/s (median)")
        print(f"ours / raw: {statistics.median(ratios):.2f} (median of the rounds' ratios)")


if __name__ == "__main__":
    main()
