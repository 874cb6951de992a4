"""Where a read and a write spend their microseconds: ``get_task_meta`` and ``store_result``.

Usage: uv run --all-groups python bench/profile_calls.py
       [--db postgres|mariadb|sqlite] [--reads 5000] [--lifecycles 2000] [--depth 14]

One throwaway database (``bench/servers.py``). A child process configured as
``bench/workloads.py`` configures it stores one SUCCESS row and polls it with
``backend.get_task_meta(id, cache=False)`` (what every ``AsyncResult.get()`` poll does),
then writes lifecycles (``store_result`` STARTED then SUCCESS, ``result_extended`` on),
each under pyinstrument (1 ms sampling, wall clock in one thread: the time is the
client's, since the database answers in another process). The raw client's CPU per
read and per upsert is measured beside it (``time.process_time()``). Printed: each call
tree down to ``cursor.execute``, frames of at least 2% of their call, as microseconds
per call.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from servers import TABLE, make_server

HERE = Path(__file__).resolve()


def merged(frames: list[Any]) -> list[tuple[str, float, list[Any]]]:
    """Siblings of one function merged (pyinstrument keeps one per calling line)."""
    groups: dict[str, tuple[float, list[Any]]] = {}
    for frame in frames:
        where = f"{frame.function}  {frame.file_path_short or ''}"
        spent, children = groups.get(where, (0.0, []))
        groups[where] = (spent + frame.time, children + list(frame.children))
    return sorted(((k, t, c) for k, (t, c) in groups.items()), key=lambda g: -g[1])


def tree(
    frames: list[Any], calls: int, total: float, depth: int, lines: list[str], level: int = 0
) -> None:
    """Append the heavy frames (>= 2% of ``total``) as ``µs/call  function  file``."""
    if level > depth:
        return
    for where, spent, children in merged(frames):
        if spent < 0.02 * total:
            continue
        lines.append(f"{'  ' * level}{spent / calls * 1e6:8.1f} µs  {where}")
        tree(children, calls, total, depth, lines, level + 1)


def profiled(label: str, calls: int, action: Any, depth: int) -> dict[str, Any]:
    """Run ``action`` under pyinstrument; return CPU per call and the call tree."""
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.001)
    began = time.process_time()
    profiler.start()
    action()
    profiler.stop()
    cpu = time.process_time() - began
    session = profiler.last_session
    root = session.root_frame() if session is not None else None
    lines: list[str] = []
    if root is not None:
        tree([root], calls, root.time, depth, lines)
    return {"label": label, "cpu_us": cpu / calls * 1e6, "tree": lines}


def child(reads: int, lifecycles: int, depth: int) -> None:
    """Profile the reads and the lifecycles through ``app.backend``; print JSON."""
    sys.path.insert(0, str(HERE.parent))
    from workloads import configure, new_app, request

    configure()
    app = new_app()
    backend = app.backend
    task_id = str(uuid.uuid4())
    backend.store_result(task_id, {"value": 42}, "SUCCESS", request=request(task_id))
    for _ in range(200):  # warm: connection, prepared statements, caches
        backend.get_task_meta(task_id, cache=False)

    def read() -> None:
        for _ in range(reads):
            backend.get_task_meta(task_id, cache=False)

    ids = [str(uuid.uuid4()) for _ in range(lifecycles)]

    def write() -> None:
        for each in ids:
            req = request(each)
            backend.store_result(each, None, "STARTED", request=req)
            backend.store_result(each, 42, "SUCCESS", request=req)

    print(json.dumps([profiled("read", reads, read, depth),
                      profiled("lifecycle", lifecycles, write, depth)]))  # fmt: skip


def raw_cpu(server: Any, name: str, reads: int, lifecycles: int) -> dict[str, float]:
    """The raw client's CPU per read (one SELECT) and per lifecycle (two upserts)."""
    connection = server.connect(name)
    cursor = connection.cursor()
    mark = server.mark
    task_id = str(uuid.uuid4())
    now = "2026-12-02 00:00:00"
    row = [task_id, "SUCCESS", "application/json", "utf-8", "42", None, "{}", None, "bench.add",
           "(1, 2)", "{}", "celery@bench", now, now, now]  # fmt: skip
    cursor.execute(server.upsert, row)
    select = (
        f"SELECT status, result, date_done, traceback, meta, task_args, task_kwargs FROM "
        f"{TABLE} WHERE task_id = {mark}"
    )
    began = time.process_time()
    for _ in range(reads):
        cursor.execute(select, [task_id])
        cursor.fetchone()
    read = (time.process_time() - began) / reads * 1e6
    began = time.process_time()
    for _ in range(lifecycles):
        each = str(uuid.uuid4())
        cursor.execute(server.upsert, [each, "STARTED", *row[2:]])
        cursor.execute(server.upsert, [each, "SUCCESS", *row[2:]])
    lifecycle = (time.process_time() - began) / lifecycles * 1e6
    connection.close()
    return {"read": read, "lifecycle": lifecycle}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["postgres", "mariadb", "sqlite"], default="postgres")
    parser.add_argument("--reads", type=int, default=5000)
    parser.add_argument("--lifecycles", type=int, default=2000)
    parser.add_argument("--depth", type=int, default=14)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.reads, args.lifecycles, args.depth)
        return
    server = make_server(args.db, {})
    try:
        name = server.create("profile")
        server.migrate(name)
        env = server.environment(name)
        done = subprocess.run(
            [sys.executable, str(HERE), "--child", "--reads", str(args.reads), "--lifecycles",
             str(args.lifecycles), "--depth", str(args.depth)],
            env=env, capture_output=True, text=True, timeout=1800, check=False,
        )  # fmt: skip
        if done.returncode:
            raise SystemExit(f"the profiled child failed:\n{done.stderr[-3000:]}")
        measured = json.loads(done.stdout)
        raw = raw_cpu(server, name, args.reads, args.lifecycles)
    finally:
        server.drop_all()
    for profile in measured:
        label = profile["label"]
        print(f"## {label} on {args.db}: client CPU {profile['cpu_us']:.0f} µs per call "
              f"(under the profiler); raw client {raw[label]:.0f} µs")  # fmt: skip
        print("```")
        print("\n".join(profile["tree"]))
        print("```")


if __name__ == "__main__":
    main()
