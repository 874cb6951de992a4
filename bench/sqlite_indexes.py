"""What the history's three indexes cost a SQLite write: lifecycle CPU with each dropped.

Usage: uv run --all-groups python bench/sqlite_indexes.py [--tasks 2000] [--rounds 5]

SQLite runs in the client's process, so its index upkeep is client CPU. One throwaway
database, migrated; each round writes ``--tasks`` lifecycles (``store_result`` STARTED
then SUCCESS, as ``bench/workloads.py`` does) once with every index, once without each of
the three the history added (``exception_type``, ``(status, date_done)``, the partial
index of rows to count) and once without all three, in turn. Printed: the median client
CPU per task of each, and its ratio to every index.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

#: The indexes the history added (migration 0018), by what they serve.
INDEXES = {
    "exception_type": "django_cele_excepti_0c5e3a_idx",
    "(status, date_done)": "django_cele_status_done_idx",
    "rows to count": "django_cele_rolled_up_idx",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    os.environ.update(
        BENCH_ENGINE="sqlite3", BENCH_NAME=str(Path(tempfile.mkdtemp()) / "indexes.sqlite3")
    )
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import workloads

    workloads.configure()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    app = workloads.new_app()
    with connection.cursor() as cursor:
        names = ", ".join(f"'{name}'" for name in INDEXES.values())
        cursor.execute(f"SELECT name, sql FROM sqlite_master WHERE name IN ({names})")
        created = dict(cursor.fetchall())
    variants: dict[str, set[str]] = {"every index": set()}
    variants |= {f"without {what}": {index} for what, index in INDEXES.items()}
    variants["without the three"] = set(INDEXES.values())
    spent: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, dropped in variants.items():
            with connection.cursor() as cursor:
                cursor.execute("DELETE FROM django_celery_results_taskresult")
                for index, sql in created.items():
                    cursor.execute(f"DROP INDEX IF EXISTS {index}")
                    if index not in dropped:
                        cursor.execute(sql)
            tasks = [str(uuid.uuid4()) for _ in range(args.tasks)]
            began = time.process_time()
            workloads.write_lifecycles(app, tasks)
            spent[name].append((time.process_time() - began) / args.tasks * 1e6)
    every = statistics.median(spent["every index"])
    print("| indexes | client CPU per task | against every index |")
    print("| --- | ---: | ---: |")
    for name, runs in spent.items():
        median = statistics.median(runs)
        print(f"| {name} | {median:,.0f} µs | {median / every:.3f} |")


if __name__ == "__main__":
    main()
