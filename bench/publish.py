"""What publish-time PENDING rows cost the sender: 1,000 tasks sent with tracking off and on.

Usage: uv run python bench/publish.py --db postgres|mariadb|sqlite [--tasks 1000] [--repeats 5]

The broker is Kombu's in-memory transport, so only the result backend's cost is measured.
Three ways to send the same tasks, interleaved in rounds, medians reported:

- off: ``TRACK_PENDING`` off (what sending costs anyway);
- on: ``TRACK_PENDING`` on, timed until every PENDING row is written (``pending.flush()``);
- hand-rolled: the ``before_task_publish`` handler upstream users write themselves, one
  ``TaskResult.objects.get_or_create()`` per task sent.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from servers import make_server


def hand_rolled(sender: str | None = None, headers: Any = None, **kwargs: Any) -> None:
    """The usual upstream recipe (django-celery-results #286 and its duplicates)."""
    from django_celery_results.models import TaskResult

    TaskResult.objects.get_or_create(
        task_id=headers["id"], defaults={"status": "PENDING", "task_name": headers["task"]}
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["postgres", "mariadb", "sqlite"], default="postgres")
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    server = make_server(args.db, {"prepare_threshold": 5})
    name = server.create("publish")
    try:
        os.environ.update(server.settings(name))
        import workloads

        workloads.configure()
        from celery import Celery
        from celery.signals import before_task_publish
        from django.core.management import call_command
        from django.test import override_settings

        from django_celery_results import pending

        call_command("migrate", verbosity=0)
        app = Celery("publish", broker="memory://", set_as_current=True)
        app.conf.update(result_backend="django-db", result_extended=True)

        @app.task(name="bench.add", shared=False)
        def add(x: int, y: int) -> int:
            return x + y

        def send_all() -> float:
            started = time.perf_counter()
            for i in range(args.tasks):
                add.apply_async((i, i))
            assert pending.flush(60)
            return time.perf_counter() - started

        def off() -> float:
            return send_all()

        def on() -> float:
            with override_settings(DJANGO_CELERY_RESULTS={"TRACK_PENDING": True}):
                return send_all()

        def handrolled() -> float:
            before_task_publish.connect(hand_rolled, weak=False)
            try:
                return send_all()
            finally:
                before_task_publish.disconnect(hand_rolled)

        ways = {"off": off, "on": on, "hand-rolled": handrolled}
        send_all()  # warm up the broker, the connection and the writer
        timings: dict[str, list[float]] = {way: [] for way in ways}
        for _ in range(args.repeats):
            for way, run in ways.items():
                timings[way].append(run())
        pending.release()
        from django.db import connections

        connections.close_all()
    finally:
        server.drop_all()
    medians = {way: statistics.median(t) for way, t in timings.items()}
    print(f"{server.label}: {args.tasks} tasks sent, median of {args.repeats} rounds")
    print("| TRACK_PENDING | time to send | per task | vs off |")
    print("| --- | ---: | ---: | ---: |")
    for way, seconds in medians.items():
        print(
            f"| {way} | {seconds * 1000:,.0f} ms | {seconds / args.tasks * 1e6:,.0f} us "
            f"| {seconds / medians['off']:.2f}x |"
        )


if __name__ == "__main__":
    main()
