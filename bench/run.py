"""Benchmark the result backend side by side: this project, upstream 2.6.0, the raw limit.

Usage: uv run python bench/run.py --db postgres|mariadb|sqlite [--tasks 1000] [--repeats 3]
       [--workloads lifecycle,reads,…] [--no-upstream] [--no-generic] [--batched]
       [--baseline OTHER_CHECKOUT/.venv/bin/python] [--json out.json]

For each implementation a fresh database is made and ``bench/workloads.py`` runs in a
subprocess: this project with its vendor driver, this project with the generic driver,
and upstream django-celery-results 2.6.0 from PyPI in a virtualenv of its own (built
once under ~/.cache). The raw limit writes the same rows straight through the database's
own client (psycopg 3, MySQLdb, sqlite3; every value a parameter, as the backend sends
it), one single-statement upsert per state change, and as a second figure 100-row
multi-row upserts. Medians of ``--repeats`` runs; ratios printed. ``--baseline`` adds
another checkout's environment (an older commit, for a before/after) as one more
contender of the same interleaved rounds.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
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

from servers import Server, make_server

ROOT = Path(__file__).resolve().parent
WORKLOADS = ROOT / "workloads.py"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "django-celery-results"
UPSTREAM = [
    "django-celery-results==2.6.0",
    "Django>=5.2,<5.3",
    "celery==5.7.0",
    "psycopg[binary]",
    "mysqlclient",
    "redis",  # bench/worker.py's broker, and kombu's redis transport's import
    "packaging",
]
#: The vendor driver of each database, and the name DISABLED_DRIVERS knows it by.
VENDOR = {"postgres": "postgresql", "mariadb": "mysql", "sqlite": "sqlite"}


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


def run_workloads(
    python: Path, server: Server, name: str, args: argparse.Namespace, **env: str
) -> Any:
    """Run bench/workloads.py with ``python`` against database ``name``; return its JSON."""
    environment = {
        **os.environ,
        **server.settings(name),
        "BENCH_TASKS": str(args.tasks),
        "BENCH_REPEATS": str(args.repeats),
        "BENCH_ONLY": ",".join(args.workloads),
        "BENCH_SETTLE": str(args.settle),
        **env,
    }
    environment.pop("DJANGO_SETTINGS_MODULE", None)
    completed = subprocess.run(
        [str(python), str(WORKLOADS)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if completed.returncode:
        raise SystemExit(f"{python} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout)


def registered_vendors() -> set[str]:
    """Return the vendors this environment has a driver installed for."""
    from importlib.metadata import entry_points

    return {e.name for e in entry_points(group="django_celery_results.drivers")}


def raw_row(task_id: str, status: str, result: str, server: Server) -> list[Any]:
    """The values the backend stores for one state change (result_extended on)."""
    now: Any = datetime.now(UTC)
    if server.engine != "postgresql":
        now = now.replace(tzinfo=None).isoformat(" ")  # naive UTC text, as Django stores it
    started = now if status == "STARTED" else None
    return [
        task_id, status, "application/json", "utf-8", result, None, '{"children": []}',
        None, "bench.add", '"(1, 2)"', '"{}"', "celery@bench", now, started, now,
    ]  # fmt: skip


def raw_limit(server: Server, name: str, args: argparse.Namespace) -> dict[str, Any]:
    """The same rows written straight through the database's client, no framework."""
    n, repeats = int(args.tasks), int(args.repeats)
    conn = server.connect(name)
    cursor = conn.cursor()
    pid = '{"pid": 1, "hostname": "celery@bench"}'

    #: Client CPU per operation (µs) of the single-threaded workloads, one per repeat.
    cpus: dict[str, list[float]] = {"lifecycle": [], "reads": []}

    def lifecycle() -> float:
        started, cpu = time.perf_counter(), time.process_time()
        for _ in range(n):
            task_id = str(uuid.uuid4())
            cursor.execute(server.upsert, raw_row(task_id, "STARTED", pid, server))
            cursor.execute(server.upsert, raw_row(task_id, "SUCCESS", "3", server))
        cpus["lifecycle"].append((time.process_time() - cpu) / n * 1e6)
        return n / (time.perf_counter() - started)

    def write_multirow(target: Any, tasks: int, batch: int) -> None:
        """Write ``tasks`` lifecycles, ``batch`` tasks per upsert (STARTED, then SUCCESS)."""
        statement = server.upsert_many(batch)
        for _ in range(tasks // batch):
            chunk = [str(uuid.uuid4()) for _ in range(batch)]
            for state, result in (("STARTED", pid), ("SUCCESS", "3")):
                params = [v for t in chunk for v in raw_row(t, state, result, server)]
                target.execute(statement, params)

    def lifecycle_multirow(batch: int = 100) -> float:
        started = time.perf_counter()
        write_multirow(cursor, n, batch)
        return (n // batch * batch) / (time.perf_counter() - started)

    def threads4_multirow(batch: int = 100, count: int = 4) -> float:
        def work(tasks: int) -> None:
            own = server.connect(name)
            write_multirow(own.cursor(), tasks, batch)
            own.close()

        per_thread = n // count // batch * batch
        return per_thread * count / timed_threads(work, [per_thread] * count)

    def threads(count: int) -> float:
        def work(tasks: int) -> None:
            own = server.connect(name)
            own_cursor = own.cursor()
            for _ in range(tasks):
                task_id = str(uuid.uuid4())
                own_cursor.execute(server.upsert, raw_row(task_id, "STARTED", pid, server))
                own_cursor.execute(server.upsert, raw_row(task_id, "SUCCESS", "3", server))
            own.close()

        return n / timed_threads(work, [n // count] * count)

    def reads() -> float:
        stored = [str(uuid.uuid4()) for _ in range(n)]
        for task_id in stored:
            cursor.execute(server.upsert, raw_row(task_id, "SUCCESS", "3", server))
        select = f"SELECT * FROM django_celery_results_taskresult WHERE task_id = {server.mark}"
        started, cpu = time.perf_counter(), time.process_time()
        for task_id in stored:
            cursor.execute(select, [task_id])
            cursor.fetchone()
        cpus["reads"].append((time.process_time() - cpu) / n * 1e6)
        return n / (time.perf_counter() - started)

    def chord4() -> float:
        group_id = str(uuid.uuid4())
        cursor.execute(
            "INSERT INTO django_celery_results_chordcounter (group_id, sub_tasks, count) "
            f"VALUES ({server.mark}, '[]', {server.mark})",
            [group_id, n],
        )
        parts = [str(uuid.uuid4()) for _ in range(n)]

        def finish(mine: list[str]) -> None:
            own = server.connect(name)
            own_cursor = own.cursor()
            for part in mine:
                own_cursor.execute(server.upsert, raw_row(part, "SUCCESS", "1", server))
                server.decrement_and_read(own_cursor, group_id)
            own.close()

        return n / timed_threads(finish, [parts[k::4] for k in range(4)])

    measured = {
        "lifecycle": lifecycle,
        "lifecycle_multirow": lifecycle_multirow,
        "threads4": lambda: threads(4),
        "threads4_multirow": threads4_multirow,
        "threads8": lambda: threads(8),
        "reads": reads,
        "chord4": chord4,
    }
    results = {}
    for label, workload in measured.items():
        if label.split("_")[0] in args.workloads:
            time.sleep(args.settle)
            gc.collect()  # as workloads.py does: no contender pays for earlier garbage
            results[label] = {"rate": statistics.median(workload() for _ in range(repeats))}
            if cpus.get(label):
                results[label]["cpu"] = statistics.median(cpus[label])
    conn.close()
    return results


def timed_threads(target: Any, arguments: list[Any]) -> float:
    """Run ``target(argument)`` in one thread per argument; return the seconds it took."""
    threads = [threading.Thread(target=target, args=(a,)) for a in arguments]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


#: Workloads run in the first round only: long, and their spread is small.
ONCE = {"cleanup"}
#: Pause before each contender's turn, in multiples of ``--settle`` (the pause before
#: each workload): the server's background work after the previous one (InnoDB purge,
#: PostgreSQL's WAL writer) would otherwise land in the next one's timing.
TURN_SETTLE = 3


def merge(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge one contender's rounds: median rates, summed errors and wrong states."""
    merged: dict[str, Any] = {"driver": runs[0].get("driver", "raw")}
    for workload in runs[0]:
        measured = [run[workload] for run in runs if isinstance(run.get(workload), dict)]
        if not measured:
            continue
        entry: dict[str, Any] = {"rate": statistics.median(m["rate"] for m in measured)}
        for key in ("errors", "wrong", "callbacks", "lost"):
            if key in measured[0]:
                entry[key] = sum(m[key] for m in measured)
        for key in ("cpu", "ids"):  # client CPU per operation, ids drawn per task
            if key in measured[0]:
                entry[key] = statistics.median(m[key] for m in measured)
        entry["runs"] = len(measured)
        entry["rates"] = [m["rate"] for m in measured]
        merged[workload] = entry
    return merged


CONTENDERS = ("raw", "ours", "generic", "upstream")
HEADERS = ("raw client", "ours (driver)", "ours (generic)", "upstream 2.6.0")
ROWS = (
    "lifecycle",
    "lifecycle_multirow",
    "threads4",
    "threads4_multirow",
    "threads8",
    "processes2",
    "reads",
    "join",
    "group",
    "chord4",
    "race",
    "cleanup",
)


def table(results: dict[str, Any]) -> str:
    """Format rates and ratios as a Markdown table."""
    lines = [
        f"| workload | {' | '.join(HEADERS)} | ours/raw | ours/upstream "
        "| wrong states (ours/upstream) | errors (ours/upstream) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for workload in ROWS:
        rates = {c: results.get(c, {}).get(workload, {}).get("rate") for c in CONTENDERS}
        if not any(rates.values()):
            continue
        cells = [f"{rates[c]:,.0f}/s" if rates[c] else "-" for c in CONTENDERS]
        raw, ours, upstream = rates["raw"], rates["ours"], rates["upstream"]
        ratio_raw = f"{ours / raw:.2f}x" if raw and ours else "-"
        ratio_up = f"{ours / upstream:.2f}x" if upstream and ours else "-"
        cell = {
            key: "/".join(
                str(results.get(c, {}).get(workload, {}).get(key, "-"))
                for c in ("ours", "upstream")
            )
            for key in ("wrong", "errors")
        }
        lines.append(
            f"| {workload} | {' | '.join(cells)} | {ratio_raw} | {ratio_up} "
            f"| {cell['wrong']} | {cell['errors']} |"
        )
    return "\n".join(lines)


#: Workloads of the batched table, and the raw figures each is compared with: one
#: single-statement upsert per state change, and 100-row multi-row upserts.
BATCHED_ROWS: dict[str, tuple[str | None, str | None]] = {
    "lifecycle": ("lifecycle", "lifecycle_multirow"),
    "threads4": ("threads4", "threads4_multirow"),
    "threads8": ("threads8", None),
    "processes2": (None, None),
    "chord4": ("chord4", None),
    "race": (None, None),
}


def batched_table(results: dict[str, Any]) -> str:
    """Format the batched contender against unbatched, upstream and both raw limits."""
    lines = [
        "| workload | raw single-upsert | raw 100-row multi-row | ours (batched) "
        "| ours (unbatched) | upstream 2.6.0 | batched/raw single | batched/raw multi-row "
        "| batched/upstream | wrong states | lost states | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |",
    ]

    def rate(contender: str, workload: str | None) -> float | None:
        if workload is None:
            return None
        value = results.get(contender, {}).get(workload, {}).get("rate")
        return float(value) if value else None

    def ratio(a: float | None, b: float | None) -> str:
        return f"{a / b:.2f}x" if a and b else "-"

    def figure(value: float | None) -> str:
        return f"{value:,.0f}/s" if value else "-"

    for workload, (single_name, multi_name) in BATCHED_ROWS.items():
        batched = rate("batched", workload)
        if batched is None:
            continue
        single, multi = rate("raw", single_name), rate("raw", multi_name)
        upstream = rate("upstream", workload)
        entry = results["batched"][workload]
        counts = [str(entry.get(key, "-")) for key in ("wrong", "lost", "errors")]
        cells = [
            figure(single), figure(multi), figure(batched), figure(rate("ours", workload)),
            figure(upstream), ratio(batched, single), ratio(batched, multi),
            ratio(batched, upstream), *counts,
        ]  # fmt: skip
        lines.append(f"| {workload} | {' | '.join(cells)} |")
    return "\n".join(lines)


def baseline_table(results: dict[str, Any]) -> str:
    """Format this checkout against ``--baseline``: medians, the runs' spread, the ratio."""
    lines = [
        "| workload | baseline | this checkout | this/baseline | baseline runs | this runs |",
        "| --- | ---: | ---: | ---: | --- | --- |",
    ]

    def spread(entry: dict[str, Any]) -> str:
        rates = entry.get("rates") or [entry["rate"]]
        return f"{min(rates):,.0f} to {max(rates):,.0f}"

    for workload in ROWS:
        before = results["baseline"].get(workload)
        after = results.get("ours", {}).get(workload)
        if not (before and after):
            continue
        lines.append(
            f"| {workload} | {before['rate']:,.0f}/s | {after['rate']:,.0f}/s "
            f"| {after['rate'] / before['rate']:.2f}x | {spread(before)} | {spread(after)} |"
        )
    return "\n".join(lines)


def cost_table(results: dict[str, Any]) -> str:
    """Format client CPU per operation (µs) and ids drawn per task, beside the raw client's."""
    names = [
        c for c in ("raw", "ours", "baseline", "batched", "generic", "upstream") if c in results
    ]
    lines = [
        f"| workload | figure | {' | '.join(names)} | ours/raw |",
        f"| --- | --- | {' | '.join('---:' for _ in names)} | ---: |",
    ]
    for workload in ("lifecycle", "reads"):
        for key, label, form in (("cpu", "client CPU µs/op", ",.0f"), ("ids", "ids/task", ".2f")):
            values = {c: results[c].get(workload, {}).get(key) for c in names}
            if not any(v is not None for v in values.values()):
                continue
            cells = ["-" if values[c] is None else format(values[c], form) for c in names]
            raw, ours = values.get("raw"), values.get("ours")
            ratio = f"{ours / raw:.2f}x" if raw and ours and key == "cpu" else "-"
            lines.append(f"| {workload} | {label} | {' | '.join(cells)} | {ratio} |")
    return "\n".join(lines)


def render(path: Path) -> None:
    """Print the tables of a ``--json`` file written by an earlier run."""
    saved = json.loads(path.read_text())
    print(table(saved))
    print("\nClient CPU per operation and ids drawn per task:")
    print(cost_table(saved))
    if "batched" in saved:
        print("\nBatched state updates (BATCH_WRITES):")
        print(batched_table(saved))
    if "baseline" in saved:
        print("\nThis checkout against the baseline (--baseline), driver on:")
        print(baseline_table(saved))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["postgres", "mariadb", "sqlite"], default="postgres")
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--workloads",
        type=lambda text: text.split(","),
        default=[r for r in ROWS if r != "lifecycle_multirow"],
        help="comma-separated subset of: " + ", ".join(r for r in ROWS if "_" not in r),
    )
    parser.add_argument("--no-upstream", action="store_true", help="skip upstream 2.6.0")
    parser.add_argument(
        "--no-generic", action="store_true", help="skip ours with the generic driver"
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=1.0,
        help="seconds of quiet before each workload, 3 times that before each contender, "
        "which also waits for the server's deferred work (0: no pauses, for smoke tests)",
    )
    parser.add_argument(
        "--batched", action="store_true", help="add ours with BATCH_WRITES on as a contender"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="the Python of another checkout's environment (e.g. an older commit's "
        ".venv/bin/python), run as one more contender: before/after in one interleaved run",
    )
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--options",
        type=json.loads,
        default={"prepare_threshold": 5},
        help="Django OPTIONS of the PostgreSQL database, for every Django-based contender "
        "(default: psycopg's own prepare threshold, which Django turns off)",
    )
    parser.add_argument("--render", type=Path, help="print the tables of a --json file")
    args = parser.parse_args()
    if args.render:
        render(args.render)
        return
    server = make_server(args.db, args.options)
    ours = Path(sys.executable)
    vendor = VENDOR[args.db]
    contenders: dict[str, tuple[Path, str, dict[str, str]]] = {
        "ours": (ours, server.create("ours"), {}),
    }
    if vendor in registered_vendors() and not args.no_generic:
        env = {"BENCH_DISABLED_DRIVERS": vendor}
        contenders["generic"] = (ours, server.create("generic"), env)
    if args.baseline:
        contenders["baseline"] = (args.baseline, server.create("baseline"), {})
    if args.batched:
        contenders["batched"] = (ours, server.create("batched"), {"BENCH_BATCH_WRITES": "1"})
    if not args.no_upstream:
        contenders["upstream"] = (upstream_python(), server.create("upstream"), {})
    raw_db = server.create("raw")
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in [*contenders, "raw"]}
    try:
        run_workloads(ours, server, raw_db, args, BENCH_MIGRATE_ONLY="1")
        # Rounds interleave the contenders, so a drift of the machine (disk flushes, the
        # other core's load) spreads over all of them instead of favouring one. Each
        # round shuffles their order (seeded: runs repeat), so none always follows the
        # same one; before each turn the server writes back what the previous one left.
        names = [*contenders, "raw"]
        for number in range(args.repeats):
            workloads = [w for w in args.workloads if number == 0 or w not in ONCE]
            one = argparse.Namespace(**{**vars(args), "repeats": 1, "workloads": workloads})
            order = names[:]
            random.Random(number).shuffle(order)
            for name in order:
                if args.settle:
                    server.quiesce()
                time.sleep(TURN_SETTLE * args.settle)
                if name == "raw":
                    rounds["raw"].append(raw_limit(server, raw_db, one))
                else:
                    python, database, env = contenders[name]
                    rounds[name].append(run_workloads(python, server, database, one, **env))
            print(f"round {number + 1} of {args.repeats} done", file=sys.stderr)
    finally:
        server.drop_all()
    results = {name: merge(runs) for name, runs in rounds.items()}
    print(f"{server.label}, {args.tasks} tasks per workload, median of {args.repeats} runs")
    if args.db == "postgres":
        print(f"Django OPTIONS for ours, generic and upstream: {json.dumps(args.options)}")
    print(", ".join(f"{c}={results[c]['driver']}" for c in ("ours", "generic") if c in results))
    print(table(results))
    print("\nClient CPU per operation and ids drawn per task:")
    print(cost_table(results))
    if "batched" in results:
        print("\nBatched state updates (BATCH_WRITES):")
        print(batched_table(results))
    if "baseline" in results:
        print("\nThis checkout against the baseline (--baseline), driver on:")
        print(baseline_table(results))
    if args.json:
        args.json.write_text(json.dumps({"db": args.db, "tasks": args.tasks, **results}, indent=2))


if __name__ == "__main__":
    main()
