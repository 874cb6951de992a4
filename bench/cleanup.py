"""Benchmark cleanup at scale: ``celery_results_cleanup`` against one raw ``DELETE``.

Usage: uv run --all-groups python bench/cleanup.py --db postgres|mariadb
       [--expired 5000000] [--live 1000000] [--batch-size 10000] [--at-rest 8]
       [--json out.json]

Two throwaway databases get the same table, seeded inside the database
(``generate_series`` / MariaDB's ``seq_1_to_N``): ``--expired`` rows done two days ago
among ``--live`` rows done now. On one, ``manage.py celery_results_cleanup`` runs in a
subprocess (its peak RSS measured, every DELETE's duration timed inside it) while a
second subprocess writes task lifecycles (STARTED then SUCCESS through the backend) and
times each; the same writer first runs alone, for its latency at rest. On the other,
the raw client runs one ``DELETE … WHERE date_done < …``. After each, the work the
deletes left behind is finished and timed (PostgreSQL: ``VACUUM``; MariaDB: waiting for
InnoDB's purge, which beside chunks runs during the cleanup). On a third copy the raw
client deletes in chunks of the same shape as the command's (``--raw-chunk-rows``), no
Python between them: what short transactions cost on this server. Printed: rows/s and
their ratio, the longest chunk, the command's peak memory against the same command on
a table with nothing to delete, and the writer's p50/p99 at rest, during cleanup, during
the raw DELETE, and beside a busy loop that touches no database (what sharing the
machine's cores costs).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from servers import TABLE, Server, make_server

HERE = Path(__file__).resolve()

#: Fills the table inside the database; ``{n}`` rows, ``{age}`` seconds old, ids ``{tag}``.
#: As in a real table, a row inserted later (a higher ``id``) is done later.
SEED = {
    "postgresql": (
        f"INSERT INTO {TABLE} (task_id, status, content_type, content_encoding, result, "
        "meta, task_name, worker, queue, retries, date_created, date_started, date_done) "
        "SELECT '{tag}-' || i, 'SUCCESS', 'application/json', 'utf-8', '42', "
        "'{{\"children\": []}}', 'bench.add', 'celery@bench', 'celery', 0, "
        "now() - make_interval(secs => {age} + ({n} - i) / 1000.0), "
        "now() - make_interval(secs => {age} + ({n} - i) / 1000.0), "
        "now() - make_interval(secs => {age} + ({n} - i) / 1000.0) "
        "FROM generate_series(1, {n}) AS i"
    ),
    "mysql": (
        f"INSERT INTO {TABLE} (task_id, status, content_type, content_encoding, result, "
        "meta, task_name, worker, queue, retries, date_created, date_started, date_done) "
        "SELECT CONCAT('{tag}-', seq), 'SUCCESS', 'application/json', 'utf-8', '42', "
        "'{{\"children\": []}}', 'bench.add', 'celery@bench', 'celery', 0, "
        "UTC_TIMESTAMP(6) - INTERVAL ({age} + ({n} - seq) / 1000) SECOND, "
        "UTC_TIMESTAMP(6) - INTERVAL ({age} + ({n} - seq) / 1000) SECOND, "
        "UTC_TIMESTAMP(6) - INTERVAL ({age} + ({n} - seq) / 1000) SECOND "
        "FROM seq_1_to_{n}"
    ),
}
TWO_DAYS = 2 * 86400


def django_setup() -> None:
    """Configure Django from BENCH_ENGINE/BENCH_NAME (as ``workloads.py`` does)."""
    sys.path.insert(0, str(HERE.parent))
    from workloads import configure

    configure()


def child_cleanup(batch_size: int) -> None:
    """Run the command, timing every DELETE it sends; print JSON (its report + chunks)."""
    django_setup()
    from io import StringIO

    from celery import Celery
    from django.core.management import call_command
    from django.db import connection

    app = Celery("bench-cleanup")
    app.conf.result_expires = 86400
    app.set_current()
    chunks: list[float] = []

    def timed(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if "DELETE FROM" not in sql:
            return execute(sql, params, many, context)
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            chunks.append(time.perf_counter() - began)

    out = StringIO()
    with connection.execute_wrapper(timed):
        call_command(
            "celery_results_cleanup", "--format", "json", "--batch-size", str(batch_size),
            stdout=out,
        )  # fmt: skip
    report = json.loads(out.getvalue())
    report["chunks"] = len(chunks)
    report["longest_chunk"] = max(chunks, default=0.0)
    report["peak_rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(report))


def child_writer(stop_file: str, seconds: float) -> None:
    """Write lifecycles until ``stop_file`` exists (or ``seconds`` pass); print latencies."""
    django_setup()
    import uuid

    from workloads import new_app, request

    app = new_app()
    backend = app.backend
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not os.path.exists(stop_file):
        task_id = str(uuid.uuid4())
        req = request(task_id)
        began = time.perf_counter()
        backend.store_result(task_id, None, "STARTED", request=req)
        backend.store_result(task_id, 42, "SUCCESS", request=req)
        latencies.append(time.perf_counter() - began)
        if len(latencies) == 1:
            Path(stop_file + ".ready").touch()  # set up and writing: the parent may go on
    print(json.dumps(latencies))


def start_writer(server: Server, name: str, stop: str) -> subprocess.Popen[str]:
    """Start a writer on ``name``; return once it has written its first lifecycle."""
    if os.path.exists(stop + ".ready"):
        os.remove(stop + ".ready")  # left by the writer that ran before
    writer = subprocess.Popen(
        [sys.executable, str(HERE), "--child-writer", stop, "7200"],
        env={**os.environ, **server.settings(name)}, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not os.path.exists(stop + ".ready"):
        if writer.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the writer did not start")
        time.sleep(0.05)
    time.sleep(0.5)
    return writer


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def run_child(server: Server, name: str, *args: str) -> Any:
    """Run this script in child mode on database ``name``; return its JSON."""
    completed = subprocess.run(
        [sys.executable, str(HERE), *args], env=server.environment(name), capture_output=True,
        text=True, timeout=7200, check=False,
    )  # fmt: skip
    if completed.returncode:
        raise SystemExit(f"{args[0]} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout)


def seed(server: Server, name: str, expired: int, live: int) -> float:
    """Fill the table; return the seconds it took."""
    began = time.perf_counter()
    connection = server.connect(name)
    cursor = connection.cursor()
    for tag, count, age in (("expired", expired, TWO_DAYS), ("live", live, 0)):
        if count:
            cursor.execute(SEED[server.engine].format(tag=tag, n=count, age=age))
    server.refresh_statistics(cursor)
    connection.close()
    server.quiesce()
    return time.perf_counter() - began


def raw_delete(server: Server, name: str) -> float:
    """One ``DELETE … WHERE date_done < now - 1 day`` through the raw client; its seconds."""
    connection = server.connect(name)
    cursor = connection.cursor()
    if server.engine == "postgresql":
        sql = f"DELETE FROM {TABLE} WHERE date_done < now() - interval '1 day'"
    else:
        sql = f"DELETE FROM {TABLE} WHERE date_done < UTC_TIMESTAMP(6) - INTERVAL 1 DAY"
    began = time.perf_counter()
    cursor.execute(sql)
    elapsed = time.perf_counter() - began
    connection.close()
    return elapsed


def raw_chunks(server: Server, name: str, rows: int) -> dict[str, float]:
    """The raw client's chunked cleanup: the driver's chunk shape, no Python between.

    PostgreSQL: TID ranges of ``rows`` rows' worth of pages; MariaDB: primary key ranges
    of ``rows`` ids; each its own autocommitted ``DELETE``, front to back, as the command's
    chunks on a table most of which expires. What short transactions cost on this server,
    whoever sends them.
    """
    connection = server.connect(name)
    cursor = connection.cursor()
    if server.engine == "postgresql":
        cursor.execute(
            "SELECT pg_relation_size(%s::regclass) / current_setting('block_size')::int, "
            "reltuples / GREATEST(relpages, 1) FROM pg_class WHERE oid = %s::regclass",
            [TABLE, TABLE],
        )
        end, density = cursor.fetchone()
        step = max(1, round(rows / density))
        sql = (
            f"DELETE FROM {TABLE} WHERE ctid >= %s::tid AND ctid < %s::tid "
            "AND date_done < now() - interval '1 day'"
        )

        def bounds(start: int) -> list[Any]:
            return [f"({start},0)", f"({start + step},0)"]

    else:
        cursor.execute(f"SELECT MIN(id), MAX(id) + 1 FROM {TABLE}")
        start_id, end = cursor.fetchone()
        step = rows
        sql = (
            f"DELETE FROM {TABLE} WHERE id >= %s AND id < %s "
            "AND date_done < UTC_TIMESTAMP(6) - INTERVAL 1 DAY"
        )

        def bounds(start: int) -> list[Any]:
            return [start, start + step]

    start = 0 if server.engine == "postgresql" else start_id
    chunks: list[float] = []
    began = time.perf_counter()
    while start < end:
        chunk_began = time.perf_counter()
        cursor.execute(sql, bounds(start))
        chunks.append(time.perf_counter() - chunk_began)
        start += step
    elapsed = time.perf_counter() - began
    connection.close()
    return {"seconds": elapsed, "chunks": len(chunks), "longest": max(chunks, default=0.0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["postgres", "mariadb"], default="postgres")
    parser.add_argument("--expired", type=int, default=5_000_000)
    parser.add_argument("--live", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument(
        "--at-rest", type=float, default=8.0, help="seconds the writer runs alone first"
    )
    parser.add_argument(
        "--raw-chunk-rows", type=int, default=5_000, help="rows per chunk of the raw chunks"
    )
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child-cleanup", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-writer", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_cleanup:
        child_cleanup(args.batch_size)
        return
    if args.child_writer:
        child_writer(args.child_writer[0], float(args.child_writer[1]))
        return

    server = make_server(args.db, {})
    results: dict[str, Any] = {"db": args.db, "expired": args.expired, "live": args.live}
    try:
        ours, raw, empty = server.create("ours"), server.create("raw"), server.create("empty")
        chunked = server.create("chunks")
        for name in (ours, raw, empty, chunked):
            server.migrate(name)
        results["seed_seconds"] = seed(server, ours, args.expired, args.live)
        seed(server, raw, args.expired, args.live)
        seed(server, chunked, args.expired, args.live)
        seed(server, empty, 0, min(args.live, 10_000))

        # The same command on a table with nothing to delete: its memory floor.
        floor = run_child(server, empty, "--child-cleanup", "--batch-size", str(args.batch_size))
        results["empty_rss_kib"] = floor["peak_rss_kib"]

        with tempfile.TemporaryDirectory() as folder:
            stop = os.path.join(folder, "stop")
            rest = run_child(server, ours, "--child-writer", stop, str(args.at_rest))
            server.quiesce()
            writer = start_writer(server, ours, stop)
            purged = server.purged()
            began = time.perf_counter()
            report = run_child(
                server, ours, "--child-cleanup", "--batch-size", str(args.batch_size)
            )
            results["cleanup_rss_kib"] = report["peak_rss_kib"]
            results["ours_seconds"] = time.perf_counter() - began
            Path(stop).touch()
            during = json.loads(writer.communicate(timeout=120)[0])
            results["settle_ours"] = server.settle_deletes(ours, purged, report["rows"])
            # The same writer beside a busy loop that touches no database: what sharing
            # this machine's cores costs the writer, whatever the other process does.
            os.remove(stop)
            busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            try:
                loaded = run_child(server, ours, "--child-writer", stop, str(args.at_rest))
            finally:
                busy.kill()
                busy.wait()
        results["report"] = {k: report[k] for k in ("rows", "seconds", "chunks", "longest_chunk")}
        results["left_ours"] = server.count(ours)
        server.quiesce()
        with tempfile.TemporaryDirectory() as folder:
            stop = os.path.join(folder, "stop")
            writer = start_writer(server, raw, stop)
            purged = server.purged()
            results["raw_seconds"] = raw_delete(server, raw)
            Path(stop).touch()
            during_raw = json.loads(writer.communicate(timeout=120)[0])
        results["settle_raw"] = server.settle_deletes(raw, purged, args.expired)
        results["left_raw"] = server.count(raw)
        # The raw client in chunks like ours, the writer beside it: what any chunked
        # cleanup with short transactions gets from this server.
        server.quiesce()
        with tempfile.TemporaryDirectory() as folder:
            stop = os.path.join(folder, "stop")
            writer = start_writer(server, chunked, stop)
            purged = server.purged()
            results["raw_chunks"] = raw_chunks(server, chunked, args.raw_chunk_rows)
            Path(stop).touch()
            during_chunks = json.loads(writer.communicate(timeout=120)[0])
        results["settle_chunks"] = server.settle_deletes(chunked, purged, args.expired)
        results["writer"] = {
            "rest": {
                "n": len(rest),
                "p50": statistics.median(rest),
                "p99": percentile(rest, 0.99),
            },
            "during": {
                "n": len(during),
                "p50": statistics.median(during),
                "p99": percentile(during, 0.99),
            },
            "during_raw": {
                "n": len(during_raw),
                "p50": statistics.median(during_raw),
                "p99": percentile(during_raw, 0.99),
                "max": max(during_raw),
            },
            "during_raw_chunks": {
                "n": len(during_chunks),
                "p50": statistics.median(during_chunks),
                "p99": percentile(during_chunks, 0.99),
            },
            "busy_core": {
                "n": len(loaded),
                "p50": statistics.median(loaded),
                "p99": percentile(loaded, 0.99),
            },
        }
    finally:
        server.drop_all()
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


def print_table(r: dict[str, Any]) -> None:
    ours_rate = r["report"]["rows"] / r["report"]["seconds"]
    raw_rate = r["expired"] / r["raw_seconds"]
    rest, during = r["writer"]["rest"], r["writer"]["during"]
    print(f"{r['db']}: {r['expired']:,} expired rows among {r['live']:,} live ones")
    print("| measure | value | target |")
    print("| --- | ---: | --- |")
    print(f"| celery_results_cleanup | {ours_rate:,.0f} rows/s ({r['report']['seconds']:.1f} s "
          f"deleting, {r['report']['chunks']} chunks; {r['ours_seconds']:.1f} s with the "
          "process's start) | |")  # fmt: skip
    print(f"| raw `DELETE … WHERE date_done < …` | {raw_rate:,.0f} rows/s "
          f"({r['raw_seconds']:.1f} s) | |")  # fmt: skip
    print(f"| cleanup / raw | {ours_rate / raw_rate:.2f}x | >= 0.8x |")
    settled = {"postgres": "then `VACUUM`", "mariadb": "then purged by InnoDB"}[r["db"]]
    ours_settled = r["report"]["rows"] / (r["report"]["seconds"] + r["settle_ours"])
    raw_settled = r["expired"] / (r["raw_seconds"] + r["settle_raw"])
    print(f"| deleted, {settled}: cleanup / raw | {ours_settled:,.0f} / {raw_settled:,.0f} "
          f"rows/s ({r['settle_ours']:.1f} s / {r['settle_raw']:.1f} s after): "
          f"{ours_settled / raw_settled:.2f}x | |")  # fmt: skip
    print(f"| longest chunk transaction | {r['report']['longest_chunk']:.3f} s | <= 0.5 s |")
    print(f"| command's peak RSS | {r['cleanup_rss_kib'] / 1024:.0f} MiB (nothing to delete: "
          f"{r['empty_rss_kib'] / 1024:.0f} MiB) | flat |")  # fmt: skip
    print(f"| writer p50 / p99 at rest | {rest['p50'] * 1000:.1f} / {rest['p99'] * 1000:.1f} ms "
          f"({rest['n']} lifecycles) | |")  # fmt: skip
    print(f"| writer p50 / p99 during cleanup | {during['p50'] * 1000:.1f} / "
          f"{during['p99'] * 1000:.1f} ms ({during['n']} lifecycles) | |")  # fmt: skip
    print(f"| writer p99 during / at rest | {during['p99'] / rest['p99']:.2f}x | <= 2x |")
    raw_w = r["writer"]["during_raw"]
    print(f"| writer p50 / p99 / max during the raw DELETE | {raw_w['p50'] * 1000:.1f} / "
          f"{raw_w['p99'] * 1000:.1f} / {raw_w['max'] * 1000:.0f} ms ({raw_w['n']} "
          "lifecycles) | |")  # fmt: skip
    chunks, chunks_w = r["raw_chunks"], r["writer"]["during_raw_chunks"]
    chunks_rate = r["expired"] / chunks["seconds"]
    chunks_settled = r["expired"] / (chunks["seconds"] + r["settle_chunks"])
    print(f"| raw client in chunks like ours | {chunks_rate:,.0f} rows/s ({chunks['seconds']:.1f}"
          f" s, {chunks['chunks']} chunks; {r['settle_chunks']:.1f} s after): "
          f"{chunks_rate / raw_rate:.2f}x raw, {chunks_settled / raw_settled:.2f}x settled; "
          f"cleanup / these: {ours_rate / chunks_rate:.2f}x | |")  # fmt: skip
    print(f"| raw chunks: longest chunk | {chunks['longest']:.3f} s | |")
    print(
        f"| writer p50 / p99 during the raw chunks | {chunks_w['p50'] * 1000:.1f} / "
        f"{chunks_w['p99'] * 1000:.1f} ms ({chunks_w['p99'] / rest['p99']:.2f}x at rest) | |"
    )
    busy = r["writer"]["busy_core"]
    ratio = busy["p99"] / rest["p99"]
    print(f"| writer p50 / p99 beside a busy loop, no cleanup | {busy['p50'] * 1000:.1f} / "
          f"{busy['p99'] * 1000:.1f} ms ({ratio:.2f}x at rest) | |")  # fmt: skip
    print(f"| rows left (ours / raw) | {r['left_ours']:,} / {r['left_raw']:,} | "
          f"{r['live']:,} + the writer's |")  # fmt: skip


if __name__ == "__main__":
    main()
