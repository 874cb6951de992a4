"""Benchmark the admin at scale: each page at 10 thousand rows and at full size, and upstream's.

Usage: uv run --all-groups python bench/admin.py --db postgres|mariadb
       [--rows 10000000] [--small 10000] [--repeats 3] [--json out.json]
       [--keep] [--databases SMALL,FULL] [--pages REGEX]

For each size a throwaway database is migrated and seeded inside the database
(``generate_series`` / MariaDB's ``seq_1_to_N``) with rows spread over the last 30 days
(``--days``), counted into our history (timed: what ``celery_results_history`` does after
an upgrade):
90% SUCCESS, 5% FAILURE (with an exception in the result), 3% STARTED, 2% PENDING,
50 task names, 20 workers, 5 queues, a periodic task on one row in ten, UUID task ids.
Then ``bench/admin_pages.py`` runs under our Python and under upstream 2.6.0's
virtualenv (the same one ``bench/run.py`` builds), logs a superuser in with Django's
test client and times each page: the unfiltered list, by state, by task name, an id
search (ours also: an id prefix, a term that is no id, a name prefix, an exception type,
and a term that finds nothing and suggests names), a deep page (ours: the keyset cursor
at the table's middle row; upstream: the page number at the middle, which is all it
has), a detail page, our dashboard over each window (15 minutes to 30 days) and one
``/metrics`` scrape. Printed: median milliseconds
per page, and full size over small for each.

Before the pages are timed, the minutes from the newest seeded row to now are seeded at
the same rate and counted (counting ten million rows takes minutes, and the short windows
would otherwise be empty at full size only). ``--keep`` leaves the seeded databases in
place (their names are printed); ``--databases`` times the pages again on two kept ones,
without seeding or counting them again; ``--pages`` times only the pages whose name
matches.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from run import upstream_python
from servers import TABLE, Server, make_server

HERE = Path(__file__).resolve()
PAGES_SCRIPT = HERE.parent / "admin_pages.py"
DAY = 86_400
LIST = "/admin/django_celery_results/taskresult/"
DASHBOARD = f"{LIST}dashboard/"

#: Rows ``{first}`` to ``{n}`` of ``{n}`` spread over ``{spread}`` seconds up to now, ids from
#: ``md5('{tag}' || i)``.
SEED = {
    "postgresql": (
        f"INSERT INTO {TABLE} (task_id, status, content_type, content_encoding, result, "
        "meta, task_name, periodic_task_name, worker, queue, retries, task_args, "
        "task_kwargs, date_created, date_started, date_done) "
        "SELECT md5('{tag}' || i)::uuid::text, "
        "CASE WHEN i % 100 < 90 THEN 'SUCCESS' WHEN i % 100 < 95 THEN 'FAILURE' "
        "WHEN i % 100 < 98 THEN 'STARTED' ELSE 'PENDING' END, "
        "'application/json', 'utf-8', CASE WHEN i % 100 BETWEEN 90 AND 94 THEN "
        '\'{{"exc_type": "ValueError", "exc_message": ["boom"], '
        '"exc_module": "builtins"}}\' ELSE \'42\' END, \'{{"children": []}}\', '
        "'bench.task' || lpad((i % 50)::text, 2, '0'), "
        "CASE WHEN i % 10 = 0 THEN 'periodic-' || (i % 7) END, "
        "'celery@worker' || (i % 20), 'queue' || (i % 5), 0, '\"(1, 2)\"', '\"{{}}\"', "
        "d - interval '0.5 second', d - interval '0.2 second', d "
        "FROM (SELECT i, now() - make_interval(secs => ({n} - i) * {spread}::float8 / {n}) "
        "AS d FROM generate_series({first}, {n}) AS i) AS s"
    ),
    "mysql": (
        f"INSERT INTO {TABLE} (task_id, status, content_type, content_encoding, result, "
        "meta, task_name, periodic_task_name, worker, queue, retries, task_args, "
        "task_kwargs, date_created, date_started, date_done) "
        "SELECT CONCAT_WS('-', SUBSTR(m, 1, 8), SUBSTR(m, 9, 4), SUBSTR(m, 13, 4), "
        "SUBSTR(m, 17, 4), SUBSTR(m, 21, 12)), "
        "CASE WHEN i % 100 < 90 THEN 'SUCCESS' WHEN i % 100 < 95 THEN 'FAILURE' "
        "WHEN i % 100 < 98 THEN 'STARTED' ELSE 'PENDING' END, "
        "'application/json', 'utf-8', IF(i % 100 BETWEEN 90 AND 94, "
        '\'{{"exc_type": "ValueError", "exc_message": ["boom"], '
        '"exc_module": "builtins"}}\', \'42\'), \'{{"children": []}}\', '
        "CONCAT('bench.task', LPAD(i % 50, 2, '0')), "
        "IF(i % 10 = 0, CONCAT('periodic-', i % 7), NULL), "
        "CONCAT('celery@worker', i % 20), CONCAT('queue', i % 5), 0, '\"(1, 2)\"', '\"{{}}\"', "
        "d - INTERVAL 0.5 SECOND, d - INTERVAL 0.2 SECOND, d "
        "FROM (SELECT seq AS i, MD5(CONCAT('{tag}', seq)) AS m, "
        "UTC_TIMESTAMP(6) - INTERVAL (({n} - seq) * {spread} / {n}) SECOND AS d "
        "FROM seq_{first}_to_{n}) AS s"
    ),
}


def task_id(tag: str, i: int) -> str:
    """The id the seed gives row ``i``."""
    return str(uuid.UUID(hashlib.md5(f"{tag}{i}".encode()).hexdigest()))


def run_pages(python: Path, server: Server, name: str, pages: dict[str, str], repeats: int) -> Any:
    """Run ``admin_pages.py`` with ``python`` on database ``name``; return its timings."""
    return pages_script(
        python, server, name, {"BENCH_PAGES": json.dumps(pages), "BENCH_REPEATS": str(repeats)}
    )


def pages_script(python: Path, server: Server, name: str, env: dict[str, str]) -> Any:
    """Run ``admin_pages.py`` with ``python`` on database ``name``; return its last line."""
    env = {**os.environ, **server.settings(name), **env}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    completed = subprocess.run(
        [str(python), str(PAGES_SCRIPT)], env=env, capture_output=True, text=True,
        timeout=7200, check=False,
    )  # fmt: skip
    if completed.returncode:
        raise SystemExit(f"admin_pages.py ({python}) failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def seed(server: Server, name: str, rows: int, days: int) -> float:
    """Fill the table with ``rows`` rows and refresh its statistics; return the seconds."""
    began = time.perf_counter()
    connection = server.connect(name)
    cursor = connection.cursor()
    cursor.execute(SEED[server.engine].format(tag=name, n=rows, first=1, spread=days * DAY))
    server.refresh_statistics(cursor)
    connection.close()
    server.quiesce()
    return time.perf_counter() - began


def top_up(server: Server, name: str, rows: int, days: int) -> int:
    """Seed the minutes between the newest row and now, at the seed's rate; return the rows.

    Counting millions of rows takes minutes: without this, the short windows of the full
    size would be empty while the small size's are not.
    """
    connection = server.connect(name)
    cursor = connection.cursor()
    cursor.execute(f"SELECT MAX(date_done) FROM {TABLE}")
    (newest,) = cursor.fetchone()
    if newest.tzinfo is None:
        newest = newest.replace(tzinfo=UTC)  # MySQL keeps UTC without a zone
    gap = (datetime.now(UTC) - newest).total_seconds()
    added = min(rows, math.ceil(gap / (days * DAY / rows)))
    if added > 0:
        tag = f"{name}-{time.time_ns()}"
        first = rows - added + 1
        cursor.execute(SEED[server.engine].format(tag=tag, n=rows, first=first, spread=days * DAY))
    connection.close()
    return max(int(added), 0)


def middle_row(server: Server, name: str, rows: int) -> tuple[int, str, str]:
    """The id, task id and ``date_done`` (ISO, UTC) of the seed's middle row."""
    wanted = task_id(name, rows // 2)
    connection = server.connect(name)
    cursor = connection.cursor()
    mark = server.mark
    cursor.execute(f"SELECT id, date_done FROM {TABLE} WHERE task_id = {mark}", [wanted])
    pk, done = cursor.fetchone()
    connection.close()
    if isinstance(done, datetime) and done.tzinfo is None:
        done = done.replace(tzinfo=UTC)  # MySQL keeps UTC without a zone
    return int(pk), wanted, done.isoformat()


def pages_for(contender: str, rows: int, pk: int, wanted: str, done: str) -> dict[str, str]:
    """Each page's path, for ``contender`` (ours has a keyset cursor and a dashboard)."""
    pages = {
        "list, unfiltered": LIST,
        "list, by state": f"{LIST}?status__exact=FAILURE",
        "list, by task name": f"{LIST}?task_name__exact=bench.task07",
        "id search": f"{LIST}?q={wanted}",
    }
    if contender == "ours":
        # Upstream's search is icontains over five columns: 42 s a search at 10 million.
        pages["search, id prefix"] = f"{LIST}?q={wanted[:8]}"
        pages["search, not an id"] = f"{LIST}?q=no-such-task-id"
        pages["search, name prefix"] = f"{LIST}?q=bench.task07"
        pages["search, exception type"] = f"{LIST}?q=ValueError"
        pages["search, no match, suggestions"] = f"{LIST}?q=task07"
        pages["deep page"] = f"{LIST}?before={done.replace('+', '%2B')}~{pk}"
    else:
        pages["deep page"] = f"{LIST}?p={max(rows // 2 // 100, 1)}"
    pages["detail"] = f"{LIST}{pk}/change/"
    if contender == "ours":
        for window in ("15m", "1h", "6h", "24h", "7d", "30d"):
            pages[f"dashboard, {window}"] = f"{DASHBOARD}?window={window}"
        pages["metrics scrape"] = "/metrics/"
    return pages


def catch_up(python: Path, server: Server, name: str) -> dict[str, float]:
    """Count the seeded rows into the history (ours); return rows and seconds."""
    done = pages_script(python, server, name, {"BENCH_PAGES": "{}", "BENCH_CATCH_UP": "1"})
    return done["catch_up"]  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=["postgres", "mariadb"], required=True)
    parser.add_argument("--rows", type=int, help="full size (10M on PostgreSQL, 2M MariaDB)")
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--days", type=int, default=30, help="days the rows spread over")
    parser.add_argument("--no-upstream", action="store_true")
    parser.add_argument("--json", help="write the results to this file")
    parser.add_argument("--keep", action="store_true", help="keep the seeded databases")
    parser.add_argument("--databases", help="SMALL,FULL: time two kept databases again")
    parser.add_argument("--pages", default="", help="time only the pages matching this regex")
    args = parser.parse_args()
    full = args.rows or (10_000_000 if args.db == "postgres" else 2_000_000)
    server = make_server(args.db, {})
    contenders = {"ours": Path(sys.executable)}
    if not args.no_upstream:
        contenders["upstream"] = upstream_python()
    results: dict[str, Any] = {"db": args.db, "sizes": {}}
    kept = (
        dict(zip((args.small, full), args.databases.split(","), strict=True))
        if args.databases
        else {}
    )
    try:
        for rows in (args.small, full):
            name = kept.get(rows) or prepare(server, contenders["ours"], rows, args, results)
            added = top_up(server, name, rows, args.days)
            catch_up(contenders["ours"], server, name)
            print(f"  {added:,} rows added from the newest to now, and counted", flush=True)
            pk, wanted, done = middle_row(server, name, rows)
            timings = {}
            # Alternate who goes first, so neither always meets the colder cache.
            order = list(contenders) if rows == args.small else list(reversed(contenders))
            for contender in order:
                pages = pages_for(contender, rows, pk, wanted, done)
                pages = {page: url for page, url in pages.items() if re.search(args.pages, page)}
                timings[contender] = run_pages(
                    contenders[contender], server, name, pages, args.repeats
                )
                print(f"  {contender}: {json.dumps(timings[contender])}", flush=True)
            results["sizes"][rows] = timings
            if not args.keep:
                server.drop_all()
    finally:
        if not args.keep:
            server.drop_all()
    print_table(results, args.small, full)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


def prepare(
    server: Server, python: Path, rows: int, args: argparse.Namespace, results: dict[str, Any]
) -> str:
    """Create, migrate, seed and count a database of ``rows`` rows; return its name."""
    name = server.create(f"admin{rows}")
    run_pages(python, server, name, {}, 1)  # migrate
    seconds = seed(server, name, rows, args.days)
    print(f"{rows:,} rows seeded in {seconds:.0f} s into {name}", flush=True)
    counted = catch_up(python, server, name)
    results.setdefault("catch_up", {})[rows] = counted
    print(
        f"  history: {counted['rows']:,} rows counted in {counted['s']:.0f} s "
        f"({counted['rows'] / max(counted['s'], 1e-9):,.0f} rows/s)",
        flush=True,
    )
    # As ``celery_results_history`` ends: counting rewrote every row, and a table left to
    # autovacuum is timed while autovacuum works through it.
    connection = server.connect(name)
    server.refresh_statistics(connection.cursor())
    connection.close()
    server.quiesce()
    return name


def print_table(results: dict[str, Any], small: int, full: int) -> None:
    """Median ms per page at both sizes, and full over small, for each contender."""
    sizes = results["sizes"]
    names = list(sizes[small]["ours"])
    print(
        f"\n| page ({results['db']}) | ours {small:,} | ours {full:,} | ours full/small "
        f"| upstream {small:,} | upstream {full:,} | upstream full/small |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for page in names:
        cells = [page]
        for contender in ("ours", "upstream"):
            at_small = sizes[small].get(contender, {}).get(page)
            at_full = sizes[full].get(contender, {}).get(page)
            if at_small is None or at_full is None:
                cells += ["-", "-", "-"]
                continue
            ratio = at_full["ms"] / at_small["ms"] if at_small["ms"] else 0
            cells += [f"{at_small['ms']:,.0f} ms", f"{at_full['ms']:,.0f} ms", f"{ratio:.1f}x"]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
