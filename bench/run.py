"""Benchmark the result backend side by side: this project, upstream 2.6.0, the raw limit.

Usage: uv run python bench/run.py --db postgres [--tasks 1000] [--repeats 3] [--json out.json]

For each implementation a fresh database is made and ``bench/workloads.py`` runs in a
subprocess: this project with its vendor driver, this project with the generic driver,
and upstream django-celery-results 2.6.0 from PyPI in a virtualenv of its own (built
once under ~/.cache). The raw limit writes the same rows straight through psycopg (every
value a parameter, as the backend sends it), one single-statement upsert per state
change. Medians of ``--repeats`` runs; ratios printed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
import venv
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent
WORKLOADS = ROOT / "workloads.py"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "django-celery-results"
UPSTREAM = ["django-celery-results==2.6.0", "Django>=5.2,<5.3", "celery==5.7.0", "psycopg[binary]"]
TABLE = "django_celery_results_taskresult"
COUNTER = "django_celery_results_chordcounter"


def upstream_python() -> Path:
    """Return a Python with upstream 2.6.0 installed, building its virtualenv once."""
    folder = CACHE / "upstream-2.6.0"
    python = folder / "bin" / "python"
    marker = folder / "installed.json"
    if not (marker.exists() and json.loads(marker.read_text()) == UPSTREAM):
        venv.EnvBuilder(clear=True, with_pip=True).create(folder)
        subprocess.run([python, "-m", "pip", "install", "--quiet", *UPSTREAM], check=True)
        marker.write_text(json.dumps(UPSTREAM))
    return python


class Postgres:
    """Throwaway PostgreSQL databases on the local server."""

    def __init__(self) -> None:
        self.admin = psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres")
        self.admin.autocommit = True
        self.names: list[str] = []

    def create(self, label: str) -> str:
        name = f"bench_{label}_{uuid.uuid4().hex[:6]}"
        self.admin.execute(f'CREATE DATABASE "{name}"')
        self.names.append(name)
        return name

    def connect(self, name: str) -> psycopg.Connection[Any]:
        return psycopg.connect(host="127.0.0.1", user="postgres", dbname=name, autocommit=True)

    def drop_all(self) -> None:
        for name in self.names:
            self.admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_workloads(python: Path, name: str, args: argparse.Namespace, **env: str) -> Any:
    """Run bench/workloads.py with ``python`` against database ``name``; return its JSON."""
    environment = {
        **os.environ,
        "BENCH_ENGINE": "postgresql",
        "BENCH_NAME": name,
        "BENCH_TASKS": str(args.tasks),
        "BENCH_REPEATS": str(args.repeats),
        "BENCH_OPTIONS": json.dumps(args.options),
        **env,
    }
    environment.pop("DJANGO_SETTINGS_MODULE", None)
    completed = subprocess.run(
        [str(python), str(WORKLOADS)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if completed.returncode:
        raise SystemExit(f"{python} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout)


COLUMNS = (
    "task_id, status, content_type, content_encoding, result, traceback, meta,"
    " periodic_task_name, task_name, task_args, task_kwargs, worker, date_created,"
    " date_started, date_done"
)
# Every value of the row is a parameter, as a writer with real, varying data must send it.
UPSERT = f"""
INSERT INTO {TABLE} AS r ({COLUMNS})
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (task_id) DO UPDATE SET status = EXCLUDED.status, result = EXCLUDED.result,
  content_type = EXCLUDED.content_type, content_encoding = EXCLUDED.content_encoding,
  traceback = EXCLUDED.traceback, meta = EXCLUDED.meta, task_name = EXCLUDED.task_name,
  task_args = EXCLUDED.task_args, task_kwargs = EXCLUDED.task_kwargs,
  worker = EXCLUDED.worker, date_done = EXCLUDED.date_done,
  date_started = COALESCE(r.date_started, EXCLUDED.date_started)
WHERE r.status <> 'SUCCESS'
"""


def raw_row(task_id: str, status: str, result: str) -> list[Any]:
    """The values the backend stores for one state change (result_extended on)."""
    now = datetime.now(UTC)
    started = now if status == "STARTED" else None
    return [
        task_id, status, "application/json", "utf-8", result, None, '{"children": []}',
        None, "bench.add", '"(1, 2)"', '"{}"', "celery@bench", now, started, now,
    ]  # fmt: skip


def raw_limit(pg: Postgres, name: str, n: int, repeats: int) -> dict[str, Any]:
    """The same rows written straight through psycopg: one upsert per state change."""
    conn = pg.connect(name)

    def lifecycle() -> float:
        started = time.perf_counter()
        for _ in range(n):
            task_id = str(uuid.uuid4())
            conn.execute(UPSERT, raw_row(task_id, "STARTED", '{"pid": 1}'))
            conn.execute(UPSERT, raw_row(task_id, "SUCCESS", "3"))
        return n / (time.perf_counter() - started)

    def reads() -> float:
        stored = [str(uuid.uuid4()) for _ in range(n)]
        for task_id in stored:
            conn.execute(UPSERT, raw_row(task_id, "SUCCESS", "3"))
        started = time.perf_counter()
        for task_id in stored:
            conn.execute(f"SELECT * FROM {TABLE} WHERE task_id = %s", [task_id]).fetchone()
        return n / (time.perf_counter() - started)

    def chord4() -> float:
        group_id = str(uuid.uuid4())
        conn.execute(
            f"INSERT INTO {COUNTER} (group_id, sub_tasks, count) VALUES (%s, '[]', %s)",
            [group_id, n],
        )
        parts = [str(uuid.uuid4()) for _ in range(n)]

        def finish(mine: list[str]) -> None:
            with pg.connect(name) as own:
                for part in mine:
                    own.execute(UPSERT, raw_row(part, "SUCCESS", "1"))
                    own.execute(
                        f"UPDATE {COUNTER} SET count = count - 1 WHERE group_id = %s "
                        "RETURNING count",
                        [group_id],
                    ).fetchone()

        threads = [threading.Thread(target=finish, args=(parts[k::4],)) for k in range(4)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return n / (time.perf_counter() - started)

    results = {}
    for label, workload in (("lifecycle", lifecycle), ("reads", reads), ("chord4", chord4)):
        results[label] = {"rate": statistics.median(workload() for _ in range(repeats))}
    conn.close()
    return results


def table(results: dict[str, Any]) -> str:
    """Format rates and ratios as a Markdown table."""
    columns = ["raw", "ours", "generic", "upstream"]
    lines = [
        "| workload | raw psycopg | ours (driver) | ours (generic) | upstream 2.6.0 "
        "| ours/raw | ours/upstream | wrong states (ours/upstream) | errors (ours/upstream) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for workload in ("lifecycle", "reads", "chord4", "race"):
        rates = {c: results[c].get(workload, {}).get("rate") for c in columns}
        cells = [f"{rates[c]:,.0f}/s" if rates[c] else "-" for c in columns]
        raw, ours, upstream = rates["raw"], rates["ours"], rates["upstream"]
        ratio_raw = f"{ours / raw:.2f}x" if raw and ours else "-"
        ratio_up = f"{ours / upstream:.2f}x" if upstream and ours else "-"
        wrong = "/".join(
            str(results[c].get(workload, {}).get("wrong", "-")) for c in ("ours", "upstream")
        )
        errors = "/".join(
            str(results[c].get(workload, {}).get("errors", "-")) for c in ("ours", "upstream")
        )
        lines.append(
            f"| {workload} | {' | '.join(cells)} | {ratio_raw} | {ratio_up} | {wrong} | {errors} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["postgres"], default="postgres")
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--options",
        type=json.loads,
        default={"prepare_threshold": 5},
        help="Django OPTIONS of the PostgreSQL database, for every Django-based contender "
        "(default: psycopg's own prepare threshold, which Django turns off)",
    )
    args = parser.parse_args()
    pg = Postgres()
    ours = Path(sys.executable)
    try:
        results: dict[str, Any] = {}
        results["ours"] = run_workloads(ours, pg.create("ours"), args)
        results["generic"] = run_workloads(
            ours, pg.create("generic"), args, BENCH_DISABLED_DRIVERS="postgresql"
        )
        results["upstream"] = run_workloads(upstream_python(), pg.create("upstream"), args)
        raw_db = pg.create("raw")
        run_workloads(ours, raw_db, args, BENCH_MIGRATE_ONLY="1")
        results["raw"] = raw_limit(pg, raw_db, args.tasks, args.repeats)
    finally:
        pg.drop_all()
    print(f"PostgreSQL, {args.tasks} tasks per workload, median of {args.repeats} runs")
    print(f"Django OPTIONS for ours, generic and upstream: {json.dumps(args.options)}")
    print(f"drivers: ours={results['ours']['driver']}, generic={results['generic']['driver']}")
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
