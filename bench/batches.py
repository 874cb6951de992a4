"""Where a batched workload's time goes: rows per write, write time, the client's CPU.

Usage: uv run python bench/batches.py --db postgres|mariadb|sqlite [--tasks 2000]
       [--repeats 5] [--workload threads4]

Runs one workload of ``bench/workloads.py`` with ``BATCH_WRITES`` on, in this process,
and prints per run: tasks/s; the client's CPU per task (all its threads,
``time.process_time()``); the writes (batches) and their average rows; the median write,
as wall time and as CPU time of the thread that wrote it; and the median gap between the
end of one write and the start of the next. With one write at a time and the threads of
a process sharing one interpreter lock, these bound a threads workload (see
``docs/benchmarks.md``).

``--fake-write US`` replaces each database write by a sleep of US microseconds (the
interpreter lock is released, as during a real write; nothing is stored): what is left
is the cost of the backend and of the batching's coordination between threads.
``--gevent`` runs the workload under gevent's monkey-patching: its threads are greenlets,
as in a ``--pool=gevent`` worker.
"""

from __future__ import annotations

import sys

if "--gevent" in sys.argv:  # patched before anything imports threading or sockets
    from gevent import monkey

    monkey.patch_all()

import argparse
import gc
import os
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from servers import make_server


class WriteClock:
    """Times each batch the driver writes: wall, the writing thread's CPU, gaps, rows.

    Wraps the driver's ``store_task_results`` operation (a batch is one call), on the
    instance: core looks each operation up per call.
    """

    def __init__(self) -> None:
        self.walls: list[float] = []
        self.cpus: list[float] = []
        self.gaps: list[float] = []
        self.rows = 0
        self._last_end = 0.0

    def reset(self) -> None:
        self.walls, self.cpus, self.gaps = [], [], []
        self.rows, self._last_end = 0, 0.0

    def install(self) -> None:
        from django_celery_results.drivers import driver_for_alias

        ops = driver_for_alias("default").ops
        write = ops.store_task_results
        clock = self

        def timed(rows: Sequence[Any]) -> None:
            start, cpu = time.perf_counter(), time.thread_time()
            if clock._last_end:
                clock.gaps.append(start - clock._last_end)
            try:
                write(rows)
            finally:
                clock._last_end = time.perf_counter()
                clock.walls.append(clock._last_end - start)
                clock.cpus.append(time.thread_time() - cpu)
                clock.rows += len(rows)

        ops.store_task_results = timed  # type: ignore[method-assign]


def fake_writes(micros: float) -> None:
    """Make the driver's task writes sleep ``micros`` instead of reaching the database."""
    from django_celery_results.drivers import driver_for_alias

    seconds = micros / 1e6

    def write(rows: Any) -> None:
        time.sleep(seconds)

    driver_for_alias("default").ops.store_task_results = write  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["postgres", "mariadb", "sqlite"], default="postgres")
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workload", default="threads4")
    parser.add_argument("--fake-write", type=float, metavar="US", help="sleep instead of writing")
    parser.add_argument("--gevent", action="store_true", help="threads are greenlets")
    args = parser.parse_args()
    server = make_server(args.db, {"prepare_threshold": 5})
    name = server.create("batches")
    try:
        os.environ.update(server.settings(name), BENCH_BATCH_WRITES="1")
        import workloads

        workloads.configure()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        app = workloads.new_app()
        workloads.lifecycle(app, 50)  # warm up
        if args.fake_write is not None:
            fake_writes(args.fake_write)
        clock = WriteClock()
        clock.install()
        run = workloads.WORKLOADS[args.workload]
        for _ in range(args.repeats):
            gc.collect()
            time.sleep(0.5)
            clock.reset()
            cpu = time.process_time()
            result = run(app, args.tasks)
            cpu = time.process_time() - cpu
            writes = len(clock.walls)
            print(
                f"{args.workload}: {result['rate']:,.0f} tasks/s, "
                f"client CPU {cpu / args.tasks * 1e6:.0f} us/task, "
                f"{writes} writes of {clock.rows / max(writes, 1):.2f} rows, "
                f"write {statistics.median(clock.walls) * 1e6:.0f} us "
                f"(writer CPU {statistics.median(clock.cpus) * 1e6:.0f} us), "
                f"gap {statistics.median(clock.gaps or [0]) * 1e6:.0f} us, "
                f"lost {'-' if args.fake_write is not None else result.get('lost', 0)}"
            )
    finally:
        from django.db import connections

        connections.close_all()
        server.drop_all()


if __name__ == "__main__":
    main()
