"""Benchmark workloads through ``app.backend``, for whichever django_celery_results is installed.

Run by ``bench/run.py`` in a subprocess: with this project's environment, or with
upstream django-celery-results 2.6.0's virtualenv (same import name). Configuration comes
from the environment (BENCH_ENGINE, BENCH_NAME, BENCH_TASKS, BENCH_REPEATS,
BENCH_DISABLED_DRIVERS, BENCH_SETTLE: seconds of quiet before each workload); it prints
one JSON document: workload -> measurements.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import django
from django.conf import settings


def database_settings() -> dict[str, Any]:
    """The ``DATABASES["default"]`` of BENCH_ENGINE and BENCH_NAME (and BENCH_OPTIONS)."""
    engine = os.environ["BENCH_ENGINE"]
    database: dict[str, Any] = {"ENGINE": f"django.db.backends.{engine}"}
    database["NAME"] = os.environ["BENCH_NAME"]
    if engine == "postgresql":
        database.update(HOST="127.0.0.1", PORT=5432, USER="postgres")
        database["OPTIONS"] = json.loads(os.environ.get("BENCH_OPTIONS", "{}"))
    elif engine == "mysql":
        database.update(HOST="127.0.0.1", PORT=3306, USER="root", PASSWORD="")
        database["OPTIONS"] = {"charset": "utf8mb4"}
    return database


def configure() -> None:
    database = database_settings()
    conf: dict[str, Any] = {}
    if os.environ.get("BENCH_DISABLED_DRIVERS"):
        conf["DISABLED_DRIVERS"] = os.environ["BENCH_DISABLED_DRIVERS"].split(",")
    if os.environ.get("BENCH_BATCH_WRITES"):
        conf["BATCH_WRITES"] = {"max_delay_ms": 100}
    if os.environ.get("BENCH_NOTIFY"):
        conf["NOTIFY"] = True
    settings.configure(
        INSTALLED_APPS=["django_celery_results"],
        DATABASES={"default": database},
        USE_TZ=True,
        DJANGO_CELERY_RESULTS=conf,
    )
    django.setup()


def new_app() -> Any:
    from celery import Celery

    app = Celery("bench", set_as_current=False)
    app.conf.update(result_backend="django-db", result_extended=True, result_expires=None)
    return app


def request(task_id: str, **fields: Any) -> Any:
    from celery.app.task import Context

    return Context(
        id=task_id,
        task="bench.add",
        args=[1, 2],
        kwargs={},
        argsrepr="(1, 2)",
        kwargsrepr="{}",
        hostname="celery@bench",
        delivery_info={"routing_key": "celery"},
        **fields,
    )


def ids(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


def close_connections() -> None:
    from django.db import connections

    connections.close_all()


def flush_batches() -> None:
    """Write what this process queued (ours with BATCH_WRITES; nothing elsewhere)."""
    try:
        from django_celery_results import batching
    except ImportError:
        return
    batching.flush()


def write_lifecycles(app: Any, tasks: list[str]) -> None:
    """STARTED then SUCCESS for each task id, as a worker with task_track_started writes."""
    backend = app.backend
    for task_id in tasks:
        req = request(task_id)
        backend.store_result(
            task_id, {"pid": 1, "hostname": "celery@bench"}, "STARTED", request=req
        )
        backend.store_result(task_id, 3, "SUCCESS", request=req)


def count_lost(tasks: list[str]) -> int:
    """Return how many of ``tasks`` are not stored as SUCCESS (read after the timing)."""
    from django_celery_results.models import TaskResult

    stored = 0
    for start in range(0, len(tasks), 500):
        chunk = tasks[start : start + 500]
        stored += TaskResult.objects.filter(task_id__in=chunk, status="SUCCESS").count()
    return len(tasks) - stored


def last_id() -> int | None:
    """The task table's id counter: the sequence, AUTO_INCREMENT or sqlite_sequence."""
    from django.db import connection

    table = "django_celery_results_taskresult"
    queries = {
        "postgresql": f"SELECT pg_sequence_last_value(pg_get_serial_sequence('{table}', 'id'))",
        "mysql": "SELECT AUTO_INCREMENT - 1 FROM information_schema.TABLES "
        f"WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '{table}'",
        "sqlite": f"SELECT seq FROM sqlite_sequence WHERE name = '{table}'",
    }
    with connection.cursor() as cursor:
        if connection.vendor == "mysql" and not getattr(connection, "mysql_is_mariadb", True):
            # MySQL 8 caches AUTO_INCREMENT in information_schema for a day by default;
            # MAX(id) would not see the ids an upsert drew and never stored.
            cursor.execute("SET SESSION information_schema_stats_expiry = 0")
        cursor.execute(queries[connection.vendor])
        found = cursor.fetchone()
    return None if found is None or found[0] is None else int(found[0])


def lifecycle(app: Any, n: int) -> dict[str, Any]:
    """STARTED then SUCCESS per task, one process; ``lost``: tasks not stored as SUCCESS.

    ``ids``: ids drawn from the table's counter per task (an upsert draws one even when
    it updates).
    """
    tasks = ids(n)
    before = last_id() or 0
    started, cpu = time.perf_counter(), time.process_time()
    write_lifecycles(app, tasks)
    flush_batches()
    rate = n / (time.perf_counter() - started)
    cpu_us = (time.process_time() - cpu) / n * 1e6
    ids_drawn = ((last_id() or 0) - before) / n
    return {"rate": rate, "cpu": cpu_us, "lost": count_lost(tasks), "ids": ids_drawn}


def threads(app: Any, n: int, count: int) -> dict[str, Any]:
    """The lifecycle in ``count`` threads of one process (the threads pool), n tasks in all."""
    errors: list[str] = []
    shares = [ids(n // count) for _ in range(count)]

    def work(tasks: list[str]) -> None:
        try:
            write_lifecycles(app, tasks)
        except Exception as exc:
            errors.append(repr(exc))
        finally:
            close_connections()

    pool = [threading.Thread(target=work, args=(share,)) for share in shares]
    started = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    rate = n / (time.perf_counter() - started)
    lost = count_lost([t for share in shares for t in share])
    return {"rate": rate, "errors": len(errors), "lost": lost}


def threads4(app: Any, n: int) -> dict[str, Any]:
    """The lifecycle in 4 threads."""
    return threads(app, n, 4)


def threads8(app: Any, n: int) -> dict[str, Any]:
    """The lifecycle in 8 threads."""
    return threads(app, n, 8)


def processes2(app: Any, n: int) -> dict[str, Any]:
    """The lifecycle in 2 forked processes (the prefork pool), n tasks in all."""
    import multiprocessing

    close_connections()  # a forked child must not share its parent's connection
    context = multiprocessing.get_context("fork")
    shares = [ids(n // 2) for _ in range(2)]
    workers = [context.Process(target=write_lifecycles, args=(app, s)) for s in shares]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    lost = count_lost([t for share in shares for t in share])
    errors = sum(w.exitcode != 0 for w in workers)
    return {"rate": n / elapsed, "errors": errors, "lost": lost}


def join(app: Any, n: int) -> dict[str, Any]:
    """A group of n stored results joined with ``GroupResult.get()`` (results/s)."""
    backend = app.backend
    stored = ids(n)
    for task_id in stored:
        backend.store_result(task_id, 3, "SUCCESS", request=request(task_id))
    group = app.GroupResult(str(uuid.uuid4()), [app.AsyncResult(t) for t in stored])
    started = time.perf_counter()
    values = group.get(timeout=60, propagate=True)
    elapsed = time.perf_counter() - started
    return {"rate": n / elapsed, "errors": int(values != [3] * n)}


def group(app: Any, n: int) -> dict[str, Any]:
    """save_group then restore_group of groups of 10 results (groups/s)."""
    backend = app.backend
    count = max(n // 10, 10)
    started = time.perf_counter()
    for _ in range(count):
        result = app.GroupResult(str(uuid.uuid4()), [app.AsyncResult(t) for t in ids(10)])
        backend.save_group(result.id, result)
        backend.restore_group(result.id, cache=False)
    return {"rate": count / (time.perf_counter() - started)}


def cleanup(app: Any, n: int) -> dict[str, Any]:
    """backend.cleanup() of 200 x n expired rows among n live ones (rows deleted/s)."""
    from datetime import timedelta

    from django.utils import timezone

    from django_celery_results.models import TaskResult

    expired = 200 * n
    batch = [
        TaskResult(task_id=t, status="SUCCESS", result="3", content_type="application/json",
                   content_encoding="utf-8")
        for t in ids(expired)
    ]  # fmt: skip
    TaskResult.objects.bulk_create(batch, batch_size=5000)
    # date_done is auto_now: age the rows after they are in.
    TaskResult.objects.update(date_done=timezone.now() - timedelta(days=2))
    lifecycle(app, n)  # live rows the cleanup must keep
    app.backend.expires = timedelta(days=1).total_seconds()
    started = time.perf_counter()
    app.backend.cleanup()
    elapsed = time.perf_counter() - started
    left = TaskResult.objects.count()
    TaskResult.objects.all().delete()
    return {"rate": expired / elapsed, "errors": int(left != n)}


def reads(app: Any, n: int) -> dict[str, Any]:
    """get_task_meta of stored results, no cache."""
    backend = app.backend
    stored = ids(n)
    for task_id in stored:
        backend.store_result(task_id, 3, "SUCCESS", request=request(task_id))
    started, cpu = time.perf_counter(), time.process_time()
    for task_id in stored:
        backend.get_task_meta(task_id, cache=False)
    rate = n / (time.perf_counter() - started)
    return {"rate": rate, "cpu": (time.process_time() - cpu) / n * 1e6}


def chord4(app: Any, n: int) -> dict[str, Any]:
    """A chord of n parts finished by 4 threads: parts per second, callbacks fired."""
    from django_celery_results.backends import database

    fired: list[int] = []
    database.trigger_callback = lambda app, callback, group_result: fired.append(1)
    backend = app.backend
    group_id, parts = str(uuid.uuid4()), ids(n)
    callback = app.signature("bench.callback")
    backend.apply_chord((group_id, [app.AsyncResult(p) for p in parts]), callback)
    errors: list[str] = []

    def finish(mine: list[str]) -> None:
        try:
            for part in mine:
                req = request(part, group=group_id, chord=dict(callback))
                try:
                    backend.mark_as_done(part, 1, request=req)
                except Exception as exc:
                    errors.append(repr(exc))
        finally:
            close_connections()

    threads = [threading.Thread(target=finish, args=(parts[k::4],)) for k in range(4)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return {"rate": n / elapsed, "errors": len(errors), "callbacks": len(fired)}


def race(app: Any, n: int) -> dict[str, Any]:
    """Rounds of SUCCESS and a late STARTED racing on one id: wrong final states, errors."""
    from django_celery_results.models import TaskResult

    backend = app.backend
    rounds = max(n // 5, 20)
    wrong = errors = 0
    started = time.perf_counter()
    for task_id in ids(rounds):
        backend.store_result(task_id, None, "STARTED", request=request(task_id))
        barrier = threading.Barrier(2)
        failures: list[str] = []

        def write(
            state: str,
            task_id: str = task_id,
            barrier: Any = barrier,
            failures: list[str] = failures,
        ) -> None:
            try:
                barrier.wait()
                backend.store_result(task_id, 1, state, request=request(task_id))
            except Exception as exc:
                failures.append(repr(exc))
            finally:
                close_connections()

        threads = [threading.Thread(target=write, args=(s,)) for s in ("SUCCESS", "STARTED")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        errors += len(failures)
        flush_batches()  # a late STARTED still queued must be written before the check
        wrong += TaskResult.objects.get(task_id=task_id).status != "SUCCESS"
    return {"rate": rounds / (time.perf_counter() - started), "wrong": wrong, "errors": errors}


WORKLOADS: dict[str, Callable[[Any, int], dict[str, Any]]] = {
    "lifecycle": lifecycle,
    "threads4": threads4,
    "threads8": threads8,
    "processes2": processes2,
    "reads": reads,
    "join": join,
    "group": group,
    "chord4": chord4,
    "race": race,
    "cleanup": cleanup,
}
#: Run once whatever the repeats: they are long and their spread is small.
ONCE = {"cleanup"}


def main() -> None:
    configure()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if os.environ.get("BENCH_MIGRATE_ONLY"):
        print(json.dumps({}))
        return
    n = int(os.environ.get("BENCH_TASKS", "1000"))
    repeats = int(os.environ.get("BENCH_REPEATS", "3"))
    app = new_app()
    # Warm up imports, the connection and each write path, then collect the start-up
    # garbage: the first timed workload should not pay for Django's and Celery's set-up.
    lifecycle(app, 20)
    app.backend.get_task_meta(str(uuid.uuid4()), cache=False)
    results: dict[str, Any] = {}
    only = [w for w in os.environ.get("BENCH_ONLY", "").split(",") if w]
    for name, workload in WORKLOADS.items():
        if only and name not in only:
            continue
        time.sleep(float(os.environ.get("BENCH_SETTLE", "0")))
        gc.collect()
        runs = [workload(app, n) for _ in range(1 if name in ONCE else repeats)]
        merged = {"rate": statistics.median(r["rate"] for r in runs)}
        for key in ("ids", "cpu"):
            if key in runs[0]:
                merged[key] = statistics.median(r[key] for r in runs)
        for key in ("errors", "wrong", "callbacks", "lost"):
            if key in runs[0]:
                merged[key] = sum(r[key] for r in runs)
        merged["runs"] = len(runs)
        results[name] = merged
    from django.db import connection

    try:
        from django_celery_results.drivers import get_driver

        results["driver"] = type(get_driver(connection)).__name__
    except ImportError:
        results["driver"] = "upstream"
    print(json.dumps(results))


if __name__ == "__main__":
    main()
