"""What a user feels: a real ``celery worker`` through short tasks, ours against upstream.

Usage: uv run --all-groups python bench/worker.py --db postgres|mariadb|sqlite
       [--tasks 10000] [--rounds 3] [--no-upstream] [--conn-max-age 0] [--db-reuse-max N]
       [--json out.json]

Contenders: this project (its vendor driver), upstream django-celery-results 2.6.0 from
PyPI (the virtualenv ``bench/run.py`` builds), and the same worker storing no results
(``BENCH_STORE=none``), the baseline the result store's share is measured against. Each
round gives every contender, in a shuffled order, a fresh database (migrated by its own
code) and a Redis queue of its own holding ``--tasks`` messages of
``worker_project.tasks.add``, published before the worker starts; then a real worker
(``celery worker``, prefork, 2 processes, ``result_extended`` and ``track_started`` on)
drains it. Each task counts itself in Redis; the rate is timed from the first count to
the last, so neither publishing nor the worker's start is in it. Afterwards every task
must have a SUCCESS row (0 lost). Printed: medians over the rounds of tasks/s, ours /
upstream, and the result store's share of the worker's time per task,
``1 - rate(contender) / rate(no store)``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from servers import Server, make_server

HERE = Path(__file__).resolve().parent
BROKER = "redis://127.0.0.1:6379/0"
COUNTERS = "redis://127.0.0.1:6379/1"
CONTENDERS = ("ours", "upstream", "none")


def environment(
    server: Server, name: str, queue: str, store: bool, conn_max_age: int, reuse: int
) -> dict[str, str]:
    """The worker project's settings for database ``name`` and ``queue``."""
    env = {
        **os.environ,
        **server.settings(name),
        "DJANGO_SETTINGS_MODULE": "worker_project.settings",
        "PYTHONPATH": str(HERE),
        "BENCH_BROKER": BROKER,
        "BENCH_REDIS": COUNTERS,
        "BENCH_COUNTER": f"bench-worker:{queue}",
        "BENCH_STORE": "django-db" if store else "none",
        "BENCH_CONN_MAX_AGE": str(conn_max_age),
        "BENCH_DB_REUSE_MAX": str(reuse),
    }
    env.pop("PYTEST_ADDOPTS", None)
    return env


def migrate(python: str, env: dict[str, str]) -> None:
    """Create the tables with the contender's own code."""
    subprocess.run(
        [python, "-c", "import django; django.setup(); "
         "from django.core.management import call_command; call_command('migrate', verbosity=0)"],
        env=env, check=True, capture_output=True, timeout=600,
    )  # fmt: skip


def publish(queue: str, tasks: int) -> None:
    """Put ``tasks`` messages of ``add`` on ``queue`` (this process, before any worker)."""
    from celery import Celery

    app = Celery("bench-publisher", broker=BROKER, set_as_current=False)
    app.conf.task_default_queue = queue
    with app.producer_or_acquire() as producer:
        for n in range(tasks):
            app.send_task("worker_project.tasks.add", args=(n, n), producer=producer)
    app.close()


def drain(python: str, env: dict[str, str], queue: str, tasks: int) -> float:
    """Start a worker on ``queue``; return its tasks/s from the first count to the last."""
    import redis

    counters = redis.Redis.from_url(COUNTERS)
    key = env["BENCH_COUNTER"]
    counters.delete(key)
    worker = subprocess.Popen(
        [python, "-m", "celery", "-A", "worker_project", "worker", "--pool=prefork",
         "--concurrency=2", "--loglevel=warning", "-Q", queue, "-n", f"{queue}@%h",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=HERE, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 600
        first = last = None
        while time.monotonic() < deadline:
            done = int(counters.get(key) or 0)
            now = time.perf_counter()
            if done and first is None:
                first, first_done = now, done
            if done >= tasks:
                last = now
                break
            if worker.poll() is not None:
                stderr = worker.stderr.read() if worker.stderr else ""
                raise SystemExit(f"the worker stopped:\n{stderr[-3000:]}")
            time.sleep(0.005)
        if first is None or last is None:
            raise SystemExit(f"the worker did not finish {tasks} tasks in 600 s")
        return (tasks - first_done) / (last - first)
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
        counters.delete(key)
        counters.close()


def one_run(
    server: Server, contender: str, python: str, tasks: int, conn_max_age: int, reuse: int
) -> dict[str, Any]:
    """One contender, one round: fresh database and queue, publish, drain, count."""
    name = server.create(contender)
    queue = f"bench-worker-{uuid.uuid4().hex[:8]}"
    env = environment(server, name, queue, contender != "none", conn_max_age, reuse)
    migrate(python, env)
    publish(queue, tasks)
    server.quiesce()
    rate = drain(python, env, queue, tasks)
    rows = server.count(name, "status = 'SUCCESS'") if contender != "none" else tasks
    return {"rate": rate, "lost": tasks - rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["postgres", "mariadb", "sqlite"], default="postgres")
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-upstream", action="store_true")
    parser.add_argument(
        "--conn-max-age",
        type=int,
        default=0,
        help="Django's CONN_MAX_AGE in the workers (default 0, Django's)",
    )
    parser.add_argument(
        "--db-reuse-max",
        type=int,
        default=0,
        help="Celery's CELERY_DB_REUSE_MAX in the workers (default 0: Celery's worker "
        "closes every database connection before and after each task)",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    pythons = {"ours": sys.executable, "none": sys.executable}
    if not args.no_upstream:
        from run import upstream_python

        pythons["upstream"] = str(upstream_python())
    server = make_server(args.db, {})
    runs: dict[str, list[dict[str, Any]]] = {c: [] for c in pythons}
    try:
        for _ in range(args.rounds):
            order = list(pythons)
            random.shuffle(order)
            for contender in order:
                python = pythons[contender]
                runs[contender].append(
                    one_run(
                        server, contender, python, args.tasks, args.conn_max_age, args.db_reuse_max
                    )
                )
    finally:
        server.drop_all()
    results = {
        "db": args.db,
        "tasks": args.tasks,
        "rounds": args.rounds,
        "conn_max_age": args.conn_max_age,
        "db_reuse_max": args.db_reuse_max,
        "runs": runs,
        "rate": {c: statistics.median(r["rate"] for r in runs[c]) for c in runs},
        "lost": {c: sum(r["lost"] for r in runs[c]) for c in runs},
    }
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


def print_table(r: dict[str, Any]) -> None:
    rates, baseline = r["rate"], r["rate"]["none"]
    print(f"{r['db']}: {r['tasks']:,} tasks, prefork 2 processes, CONN_MAX_AGE "
          f"{r['conn_max_age']}, CELERY_DB_REUSE_MAX {r.get('db_reuse_max') or '-'}, "
          f"medians of {r['rounds']}")  # fmt: skip
    print("| contender | tasks/s | ours / upstream | result store's share of a task | lost |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for contender in (c for c in CONTENDERS if c in rates):
        rate = rates[contender]
        ratio = ""
        if contender == "ours" and "upstream" in rates:
            ratio = f"{rate / rates['upstream']:.2f}x"
        share = "-" if contender == "none" else f"{1 - rate / baseline:.0%}"
        label = {"ours": "ours", "upstream": "upstream 2.6.0", "none": "no result store"}
        print(f"| {label[contender]} | {rate:,.0f} | {ratio} | {share} | "
              f"{r['lost'][contender]} |")  # fmt: skip


if __name__ == "__main__":
    main()
