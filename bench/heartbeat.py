"""What a worker's heartbeats cost: statements per minute, and CPU per heartbeat.

Usage: uv run --all-groups python bench/heartbeat.py [--db sqlite|postgres|mariadb]
       [--beats 200] [--workers 20] [--started 100]

A worker's throughput moves too much between runs to show a 1% cost, so this times the
heartbeat itself. On a throwaway database it registers ``--workers`` workers (one of them
lost, with ``--started`` STARTED rows of live workers around), then runs ``--beats``
heartbeats of one worker exactly as its heartbeat thread does (the beat, then the lifeline's
sweep, each through the fork guard, its connection closed after, as in a worker) and
counts the statements each sends (``connection.execute_wrapper``) and the CPU time the
thread spends (``time.thread_time``). Printed: statements and CPU per heartbeat, elected
and not, and per worker per minute at the default 15 s interval.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

#: Heartbeats a minute at the default ``WORKER_HEARTBEAT`` (15 s).
BEATS_PER_MINUTE = 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "mariadb"], default="sqlite")
    parser.add_argument("--beats", type=int, default=200)
    parser.add_argument("--workers", type=int, default=20)
    parser.add_argument("--started", type=int, default=100)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import servers
    import workloads

    server = servers.make_server(args.db, {})
    name = server.create("heartbeat")
    try:
        os.environ.update(server.settings(name))
        workloads.configure()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        results = measure(args.beats, args.workers, args.started)
    finally:
        from django.db import connections

        connections.close_all()
        server.drop_all()
    print(f"\n{args.db}: {args.workers} registered workers, {args.started} running tasks\n")
    print("| heartbeat | statements | CPU (ms, median) | statements / worker / minute |")
    print("| --- | ---: | ---: | ---: |")
    for what, (statements, cpu) in results.items():
        per_minute = statements * BEATS_PER_MINUTE
        print(f"| {what} | {statements} | {cpu * 1000:.2f} | {per_minute} |")


def measure(beats: int, workers: int, started: int) -> dict[str, tuple[int, float]]:
    """Statements and median thread CPU of one heartbeat, elected and not."""
    from celery import states
    from django.db import connection
    from django.utils import timezone

    from django_celery_results.forkguard import guarded
    from django_celery_results.models import Lease, TaskResult, Worker
    from django_celery_results.workers import election, lifeline, registry
    from django_celery_results.workers.registry import WorkerInfo

    app = workloads_app()
    infos = [
        WorkerInfo(f"celery@w{n}", "bench", 1000 + n, boot=f"{n:032x}") for n in range(workers)
    ]
    for info in infos:
        registry.register(info, "default")
    Worker.objects.filter(boot=infos[-1].boot).update(
        heartbeat_at=timezone.now() - timedelta(hours=1)  # one lost worker, long settled
    )
    now = timezone.now()
    TaskResult.objects.bulk_create(
        TaskResult(
            task_id=f"run-{n}",
            status=states.STARTED,
            task_name="bench.task",
            worker=infos[n % (workers - 1)].hostname,
            lifeline=infos[n % (workers - 1)].boot,
            date_started=now,
        )
        for n in range(started)
    )
    me = infos[0]

    def heartbeat() -> None:
        guarded(lambda: registry.beat(me, "default"), "bench: a heartbeat")
        guarded(lambda: lifeline.sweep(app, "default", me.hostname), "bench: a sweep")

    results = {"elected (beat and sweep)": timed(heartbeat, beats, connection)}
    other = WorkerInfo("celery@other", "bench", 9999, boot="f" * 32)
    registry.register(other, "default")
    Lease.objects.all().delete()  # this worker's own lease (SQLite) ends with its term
    with held_elsewhere(election.elected, lifeline.DUTY):
        # Held by another session (or lease): this worker's sweeps stop at the election.
        results["not elected (beat, election lost)"] = timed(heartbeat, beats, connection)
    return results


@contextlib.contextmanager
def held_elsewhere(elected: Any, duty: str) -> Iterator[None]:
    """Hold ``duty`` in another thread (its own connection) while the block runs."""
    from django.db import connections

    taken, done = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with elected(duty, "default", "someone else", timedelta(hours=1)) as chosen:
                assert chosen, "the duty was held already"
                taken.set()
                done.wait(timeout=600)
        finally:
            connections.close_all()

    thread = threading.Thread(target=hold)
    thread.start()
    assert taken.wait(timeout=60)
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=60)


def timed(step: Callable[[], None], beats: int, connection: Any) -> tuple[int, float]:
    """The statements one ``step`` sends, and its median CPU time in this thread."""
    counted: list[int] = []
    cpu: list[float] = []
    for _ in range(beats):
        sent = 0

        def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
            nonlocal sent
            sent += 1
            return execute(sql, params, many, context)

        start = time.thread_time()
        with connection.execute_wrapper(count):
            step()
        cpu.append(time.thread_time() - start)
        counted.append(sent)
    return statistics.mode(counted), statistics.median(cpu)


def workloads_app() -> Any:
    import workloads

    return workloads.new_app()


if __name__ == "__main__":
    main()
