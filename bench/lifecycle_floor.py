"""How low a lifecycle's client CPU can go through Celery: ours against a floor and a lean write.

Usage: uv run --all-groups python bench/lifecycle_floor.py [--db postgres|mariadb]
       [--tasks 1000] [--rounds 7]

One throwaway database (``bench/servers.py``), one process, interleaved rounds of
``--tasks`` lifecycles (``store_result`` STARTED then SUCCESS with a worker's request,
``result_extended`` on, as ``bench/workloads.py`` writes them), client CPU per task by
``time.process_time()``:

- ``raw``: the raw client's two upserts (``bench/run.py``'s raw limit), no Celery;
- ``floor``: Celery's ``store_result`` whose ``_store_result`` only encodes the result
  and runs the raw client's upsert on our kept cursor: what any backend pays;
- ``lean``: Celery's ``store_result`` running our driver's two statements (the
  upsert, then the guarded ``UPDATE``) with their parameters built inline: none of the
  driver's layers (routers, retry, batching, Django's checks, precedence lookup);
- ``ours``: the backend as shipped.

Each is also run with the client cursor replaced by a no-op (``hot``): the Python alone,
in a tight loop. The difference between a hot figure and its real one is what that
Python costs between round trips, where the CPU's caches have gone cold.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from servers import make_server

HERE = Path(__file__).resolve()
PID = {"pid": 1, "hostname": "celery@bench"}


class NoopCursor:
    """A client cursor that sends nothing: every statement changed one row."""

    rowcount = 1

    def execute(self, sql: str, params: Any = None) -> None:
        return None


def child(db: str, tasks: int, rounds: int) -> None:
    """Measure the contenders interleaved; print the table."""
    sys.path.insert(0, str(HERE.parent))
    from run import raw_row
    from workloads import configure, ids, new_app, request

    configure()
    from django.db import connections
    from django.utils import timezone

    from django_celery_results.backends.database import DatabaseBackend
    from django_celery_results.drivers import driver_for
    from django_celery_results.drivers.cursors import ClientCursors
    from django_celery_results.models import TaskResult

    server = make_server(db, {"prepare_threshold": 5})
    app = new_app()
    connection = connections["default"]
    ops = driver_for(TaskResult).ops

    # Capture our two statements as the driver runs them (an execute wrapper sends them
    # through Django's cursor, where it sees them).
    captured: list[str] = []

    def capture(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        captured.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        task_id = str(uuid.uuid4())
        app.backend.store_result(task_id, PID, "STARTED", request=request(task_id))
        app.backend.store_result(task_id, 3, "SUCCESS", request=request(task_id))
    upsert, update = captured[-2:]
    connection.ensure_connection()
    real_cursor = ops.new_client_cursor(connection)
    cursor: Any = real_cursor
    adapt = connection.ops.adapt_datetimefield_value if db == "mariadb" else None

    def lean(self: Any, tid: str, result: Any, state: str, traceback: Any = None,
             request: Any = None, **kwargs: Any) -> Any:  # fmt: skip
        content_type, content_encoding, encoded = self.encode_content(result)
        now: Any = timezone.now()
        if adapt is not None:
            now = adapt(now)
        # Then exception_type and lifeline: None.
        extended = self._extended_columns(request, traceback)
        meta = '{"children": []}'
        if state == "STARTED":
            cursor.execute(upsert, [tid, state, content_type, content_encoding, encoded, traceback,
                                    meta, *extended, None, None, now, now, now])  # fmt: skip
        else:
            cursor.execute(update, [state, content_type, content_encoding, encoded, traceback,
                                    meta, *extended, None, None, None, now, tid])  # fmt: skip
            if not cursor.rowcount:
                raise RuntimeError("the lean UPDATE found no row")
        return encoded

    def floor(self: Any, tid: str, result: Any, state: str, traceback: Any = None,
              request: Any = None, **kwargs: Any) -> Any:  # fmt: skip
        encoded = self.encode_content(result)[2]
        cursor.execute(server.upsert, raw_row(tid, state, encoded, server))
        return encoded

    # Each contender is a backend whose _store_result (Celery's hook for a backend's
    # write) is the lean or the floor one; "ours" is the backend itself.
    backends = {
        name: type(f"{name.title()}Backend", (DatabaseBackend,), {"_store_result": store})(
            app=app, url="django-db"
        )
        for name, store in (("floor", floor), ("lean", lean))
    }
    backends["ours"] = app.backend

    def through_celery(name: str) -> float:
        backend = backends[name]
        began = time.process_time()
        for each in ids(tasks):
            req = request(each)
            backend.store_result(each, PID, "STARTED", request=req)
            backend.store_result(each, 3, "SUCCESS", request=req)
        return (time.process_time() - began) / tasks * 1e6

    raw_connection = server.connect(os.environ["BENCH_NAME"])
    raw_cursor = raw_connection.cursor()
    pid_text = '{"pid": 1, "hostname": "celery@bench"}'

    def raw() -> float:
        began = time.process_time()
        for each in ids(tasks):
            raw_cursor.execute(server.upsert, raw_row(each, "STARTED", pid_text, server))
            raw_cursor.execute(server.upsert, raw_row(each, "SUCCESS", "3", server))
        return (time.process_time() - began) / tasks * 1e6

    noop = NoopCursor()

    def hot(on: bool) -> None:
        """Statements on a cursor that does nothing: what is left is our Python."""
        nonlocal cursor
        cursor = noop if on else real_cursor
        if on:
            ops.new_client_cursor = lambda connection: noop  # type: ignore[method-assign]
        else:
            del ops.new_client_cursor
        assert isinstance(ops, ClientCursors)
        ops.forget_cursors()

    contenders: dict[str, Callable[[], float]] = {
        "raw": raw,
        "floor": lambda: through_celery("floor"),
        "lean": lambda: through_celery("lean"),
        "ours": lambda: through_celery("ours"),
    }
    figures: dict[str, list[float]] = {name: [] for name in contenders}
    figures.update({f"{name} hot": [] for name in contenders if name != "raw"})
    for measure in contenders.values():  # warm: statements prepared, caches filled
        measure()
    for _ in range(rounds):
        for name, measure in contenders.items():
            figures[name].append(measure())
        hot(True)
        for name, measure in contenders.items():
            if name != "raw":
                figures[f"{name} hot"].append(measure())
        hot(False)
    raw_median = statistics.median(figures["raw"])
    print(f"{server.label}, {tasks} lifecycles per round, {rounds} interleaved rounds")
    print("| contender | client CPU µs/task (median) | best | / raw |")
    print("| --- | ---: | ---: | ---: |")
    for name, values in figures.items():
        median = statistics.median(values)
        ratio = "" if name.endswith("hot") else f"{median / raw_median:.2f}x"
        print(f"| {name} | {median:.0f} | {min(values):.0f} | {ratio} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["postgres", "mariadb"], default="postgres")
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.db, args.tasks, args.rounds)
        return
    server = make_server(args.db, {"prepare_threshold": 5})
    try:
        name = server.create("floor")
        server.migrate(name)
        subprocess.run(
            [sys.executable, str(HERE), "--child", "--db", args.db, "--tasks", str(args.tasks),
             "--rounds", str(args.rounds)],
            env=server.environment(name), check=True, timeout=1800,
        )  # fmt: skip
    finally:
        server.drop_all()


if __name__ == "__main__":
    main()
