"""Benchmark waiting on results: PostgreSQL notifications (``NOTIFY``) against polling.

Usage: uv run --all-groups python bench/wait.py [--tasks 50] [--clients 100]
       [--threads 40] [--seconds 10] [--json out.json]

On a throwaway PostgreSQL database, each mode (``notify``: ``NOTIFY`` on in writer and
waiter; ``poll``: off, ``get()``'s default 0.5 s interval) measures:

- **latency**: a writer process stores SUCCESS for ``--tasks`` tasks, one every 0.6 s,
  noting when each write returned (committed); a waiter process calls ``get()`` on each
  in turn and notes when it returned. Both clocks are the system's monotonic clock.
- **queries/s while clients wait**: ``--clients`` coroutines of one process each
  ``await aio.wait()``, then ``--threads`` threads each call ``get()`` (each thread holds
  a connection, so PostgreSQL's default 100 connections bound them), ``--seconds`` on a
  task that never finishes; the database's committed transactions are counted meanwhile
  (``pg_stat_database.xact_commit``).
- **writer throughput**: task lifecycles (STARTED then SUCCESS) per second for 5 s, with
  notifications on and off, alternating, twice each.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
GAP = 0.6  # seconds between two writes: longer than a poll interval, so get() waits


def django_setup() -> None:
    sys.path.insert(0, str(HERE.parent))
    from workloads import configure

    configure()


def child_writer(ids_file: str, start: float) -> None:
    """Store SUCCESS for each id at ``start + i * GAP``; print when each write returned."""
    django_setup()
    from workloads import new_app, request

    backend = new_app().backend
    ids = json.loads(Path(ids_file).read_text())
    done = {}
    for index, task_id in enumerate(ids):
        time.sleep(max(0.0, start + index * GAP - time.monotonic()))
        backend.store_result(task_id, 42, "SUCCESS", request=request(task_id))
        done[task_id] = time.monotonic()
    print(json.dumps(done))


def child_waiter(ids_file: str) -> None:
    """``get()`` each id in turn; print when each returned."""
    django_setup()
    from celery.result import AsyncResult
    from workloads import new_app

    app = new_app()
    ids = json.loads(Path(ids_file).read_text())
    returned = {}
    for task_id in ids:
        AsyncResult(task_id, app=app).get(timeout=60)
        returned[task_id] = time.monotonic()
    print(json.dumps(returned))


def child_clients(kind: str, clients: int, seconds: float, ready_file: str) -> None:
    """``clients`` waiters each wait ``seconds`` on a task that never finishes.

    ``threads``: each a thread calling ``get()`` (and holding a connection of its own, as
    Django gives each thread); ``coroutines``: each awaiting ``aio.wait()`` in one event
    loop, whose reads share one thread (``sync_to_async``).
    """
    django_setup()
    import asyncio
    import uuid

    from celery.exceptions import TimeoutError as CeleryTimeoutError
    from celery.result import AsyncResult
    from django.db import connections
    from workloads import new_app

    from django_celery_results import aio

    app = new_app()
    if kind == "coroutines":

        async def wait_all() -> None:
            async def wait() -> None:
                with contextlib.suppress(CeleryTimeoutError):
                    await aio.wait(AsyncResult(str(uuid.uuid4()), app=app), timeout=seconds)

            waits = [asyncio.ensure_future(wait()) for _ in range(clients)]
            await asyncio.sleep(0)
            Path(ready_file).touch()
            await asyncio.gather(*waits)

        asyncio.run(wait_all())
        print("{}")
        return
    started = threading.Barrier(clients + 1)

    def wait() -> None:
        result = AsyncResult(str(uuid.uuid4()), app=app)
        started.wait()
        try:
            result.get(timeout=seconds)
        except CeleryTimeoutError:
            pass
        finally:
            connections.close_all()

    threads = [threading.Thread(target=wait) for _ in range(clients)]
    for thread in threads:
        thread.start()
    started.wait()
    Path(ready_file).touch()
    for thread in threads:
        thread.join()
    print("{}")


def child_lifecycles(seconds: float) -> None:
    """Write lifecycles for ``seconds``; print how many per second."""
    django_setup()
    import uuid

    from workloads import new_app, request

    backend = new_app().backend
    count, deadline = 0, time.monotonic() + seconds
    began = time.monotonic()
    while time.monotonic() < deadline:
        task_id = str(uuid.uuid4())
        req = request(task_id)
        backend.store_result(task_id, None, "STARTED", request=req)
        backend.store_result(task_id, 42, "SUCCESS", request=req)
        count += 1
    print(json.dumps({"rate": count / (time.monotonic() - began)}))


def spawn(server: Any, name: str, notify: bool, *args: str) -> subprocess.Popen[str]:
    env = server.environment(name)
    if notify:
        env["BENCH_NOTIFY"] = "1"
    return subprocess.Popen(
        [sys.executable, str(HERE), *args], env=env, stdout=subprocess.PIPE, text=True
    )


def finish(process: subprocess.Popen[str]) -> Any:
    out, _ = process.communicate(timeout=600)
    if process.returncode:
        raise SystemExit(f"a child failed ({process.args!r})")
    return json.loads(out)


def latency(server: Any, name: str, notify: bool, tasks: int, folder: Path) -> dict[str, float]:
    import uuid

    ids_file = folder / f"ids-{notify}.json"
    ids_file.write_text(json.dumps([str(uuid.uuid4()) for _ in range(tasks)]))
    waiter = spawn(server, name, notify, "--child-waiter", str(ids_file))
    time.sleep(3.0)  # the waiter is set up and waiting on the first id
    start = time.monotonic() + 1.0
    writer = spawn(server, name, notify, "--child-writer", str(ids_file), str(start))
    done, returned = finish(writer), finish(waiter)
    delays = sorted((returned[i] - done[i]) * 1000 for i in done)
    return {
        "p50_ms": statistics.median(delays),
        "p99_ms": delays[min(len(delays) - 1, int(0.99 * len(delays)))],
        "max_ms": delays[-1],
    }


def commits(server: Any, name: str) -> int:
    connection = server.connect("postgres")
    row = connection.execute(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = %s", [name]
    ).fetchone()
    connection.close()
    return int(row[0])


def queries_while_waiting(
    server: Any, name: str, notify: bool, kind: str, clients: int, seconds: float, folder: Path
) -> float:
    ready = folder / f"ready-{notify}-{kind}"
    process = spawn(
        server, name, notify, "--child-clients", kind, str(clients), str(seconds), str(ready)
    )
    while not ready.exists():
        if process.poll() is not None:
            raise SystemExit("the clients did not start")
        time.sleep(0.05)
    time.sleep(1.0)  # past each client's first read
    window = seconds - 2.0
    before = commits(server, name)
    time.sleep(window)
    after = commits(server, name)
    finish(process)
    return (after - before) / window


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--clients", type=int, default=100, help="coroutines (aio.wait)")
    parser.add_argument(
        "--threads", type=int, default=40, help="threads (get(); one connection each)"
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--lifecycle-seconds", type=float, default=5.0)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child-writer", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--child-waiter", help=argparse.SUPPRESS)
    parser.add_argument("--child-clients", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--child-lifecycles", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_writer:
        return child_writer(args.child_writer[0], float(args.child_writer[1]))
    if args.child_waiter:
        return child_waiter(args.child_waiter)
    if args.child_clients:
        kind, clients, seconds, ready = args.child_clients
        return child_clients(kind, int(clients), float(seconds), ready)
    if args.child_lifecycles:
        return child_lifecycles(args.child_lifecycles)

    import tempfile

    sys.path.insert(0, str(HERE.parent))
    from servers import make_server

    server = make_server("postgres", {})
    results: dict[str, Any] = {}
    try:
        name = server.create("wait")
        server.migrate(name)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            for mode in ("notify", "poll"):
                notify = mode == "notify"
                results[mode] = {
                    "latency": latency(server, name, notify, args.tasks, folder),
                    "queries_per_s": queries_while_waiting(
                        server, name, notify, "coroutines", args.clients, args.seconds, folder
                    ),
                    "queries_per_s_threads": queries_while_waiting(
                        server, name, notify, "threads", args.threads, args.seconds, folder
                    ),
                }
            rates: dict[str, list[float]] = {"notify": [], "poll": []}
            for mode in ("poll", "notify", "poll", "notify"):
                child = spawn(server, name, mode == "notify", "--child-lifecycles",
                              str(args.lifecycle_seconds))  # fmt: skip
                rates[mode].append(finish(child)["rate"])
            for mode, values in rates.items():
                results[mode]["lifecycles_per_s"] = statistics.median(values)
    finally:
        server.drop_all()
    print_table(results, args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


def print_table(r: dict[str, Any], args: argparse.Namespace) -> None:
    notify, poll = r["notify"], r["poll"]
    print("| measure | NOTIFY | polling (0.5 s) | target |")
    print("| --- | ---: | ---: | --- |")
    for key, label, target in (
        ("p50_ms", "commit to get() returning, p50", "<= 5 ms"),
        ("p99_ms", "commit to get() returning, p99", "<= 50 ms"),
        ("max_ms", "commit to get() returning, max", ""),
    ):
        print(f"| {label} ({args.tasks} tasks) | {notify['latency'][key]:.1f} ms | "
              f"{poll['latency'][key]:.1f} ms | {target} |")  # fmt: skip
    print(f"| queries/s while {args.clients} coroutines `await aio.wait()` | "
          f"{notify['queries_per_s']:.1f} | {poll['queries_per_s']:.1f} | about 0 |")  # fmt: skip
    print(f"| queries/s while {args.threads} threads `get()` | "
          f"{notify['queries_per_s_threads']:.1f} | {poll['queries_per_s_threads']:.1f} | "
          "about 0 |")  # fmt: skip
    ratio = notify["lifecycles_per_s"] / poll["lifecycles_per_s"]
    print(f"| writer lifecycles/s (medians of 2) | {notify['lifecycles_per_s']:,.0f} | "
          f"{poll['lifecycles_per_s']:,.0f} | NOTIFY >= 0.95x: {ratio:.2f}x |")  # fmt: skip


if __name__ == "__main__":
    main()
