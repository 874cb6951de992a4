"""``manage.py celery_results_history``: count every row not yet counted, with a progress bar.

Run it once after upgrading, so a table of millions of rows shows its past at once (the
workers' catch-ups would get there too, a bounded slice at a time). It also names the
exception type of stored JSON failures written before the column existed.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import connections, router

from ...history.rollup import Progress, catch_up
from ...models import HistoryBacklog, HistoryCount, HistorySeries, HistorySpread, TaskResult

#: Characters of the progress bar.
BAR = 30
#: Rows counted after which the tables' statistics are refreshed, and PostgreSQL's result
#: table vacuumed, at the end.
VACUUM_AFTER = 10_000
#: The history's tables, whose statistics a large catch-up changes.
HISTORY_MODELS = (HistoryBacklog, HistoryCount, HistorySeries, HistorySpread)
#: Rows counted per transaction: more than the workers' catch-ups, whose transactions
#: stay short beside task writes; the buckets a chunk shares are written once.
CHUNK = 5000


class Command(BaseCommand):
    """Bring the rolled-up history up to date with the stored rows."""

    help = (
        "Count every result row written since the history last caught up (after an "
        "upgrade: every stored row) into the rolled-up history, with a progress bar."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        """Add --database and --quiet."""
        parser.add_argument(
            "--database",
            default=None,
            help="The database alias of the results (default: where results are written).",
        )
        parser.add_argument("--quiet", action="store_true", help="Print only the summary.")
        parser.add_argument(
            "--no-vacuum",
            action="store_true",
            help="On PostgreSQL, leave the table's old row versions to autovacuum.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Catch up, showing progress, until no row is left to count."""
        alias = options["database"] or router.db_for_write(TaskResult) or "default"
        table = TaskResult._default_manager.db_manager(alias)
        todo = table.filter(rolled_up=False).count()
        began = time.monotonic()
        shown = 0.0
        quiet = options["quiet"]

        def show(progress: Progress) -> None:
            nonlocal shown
            now = time.monotonic()
            if quiet or (now - shown < 0.2 and progress.rows < todo):
                return
            shown = now
            done = min(progress.rows, todo) if todo else progress.rows
            fraction = done / todo if todo else 1.0
            rate = progress.rows / max(now - began, 1e-6)
            left = (todo - done) / rate if rate and todo > done else 0.0
            filled = round(BAR * fraction)
            self.stderr.write(
                f"\r[{'#' * filled}{' ' * (BAR - filled)}] {done:,}/{todo:,} rows "
                f"{rate:,.0f} rows/s, {left:,.0f} s left",
                ending="",
            )

        progress = Progress()
        while True:
            step = catch_up(
                alias, wait=True, chunk=CHUNK, on_chunk=lambda p: show(_total(progress, p))
            )
            progress.rows += step.rows
            if not step.remaining:
                break
        if not quiet and todo:
            self.stderr.write("")
        seconds = time.monotonic() - began
        self.stdout.write(f"Counted {progress.rows:,} rows into the history in {seconds:.1f} s.")
        if progress.rows >= VACUUM_AFTER:
            self._analyze(alias)
            if not options["no_vacuum"]:
                self._vacuum(alias)

    def _analyze(self, alias: str) -> None:
        """Refresh the planner's statistics of the history's tables, grown all at once.

        MariaDB planned a chart over stale ones as a scan of every count row (82 s for
        one page after counting two million rows, 23 ms after ``ANALYZE TABLE``).
        """
        connection = connections[alias]
        quote = connection.ops.quote_name
        tables = ", ".join(quote(model._meta.db_table) for model in HISTORY_MODELS)
        statement = {
            "postgresql": f"ANALYZE {tables}",
            "mysql": f"ANALYZE TABLE {tables}",
            "sqlite": "ANALYZE",
        }.get(connection.vendor)
        if statement is not None:
            with connection.cursor() as cursor:
                cursor.execute(statement)
                if connection.vendor == "mysql":
                    cursor.fetchall()  # ANALYZE TABLE answers a row per table

    def _vacuum(self, alias: str) -> None:
        """PostgreSQL: ``VACUUM ANALYZE`` the table, whose counted rows left old versions.

        Marking a row counted writes a new version of it. Until vacuumed, the old ones
        (one per row counted) make every index walk of the table step over them and every
        index-only scan visit the heap: after counting millions of rows the admin's pages
        were five times slower until autovacuum, throttled, got there.
        """
        connection = connections[alias]
        if connection.vendor != "postgresql":
            return
        if connection.in_atomic_block:  # VACUUM cannot run in a transaction
            self.stdout.write("Not vacuumed: called inside a transaction.")
            return
        table = connection.ops.quote_name(TaskResult._meta.db_table)
        began = time.monotonic()
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM (ANALYZE) {table}")
        seconds = time.monotonic() - began
        self.stdout.write(f"Vacuumed {table} in {seconds:.1f} s.")


def _total(before: Progress, step: Progress) -> Progress:
    """The progress of the whole command: earlier catch-ups' rows and this one's."""
    return Progress(rows=before.rows + step.rows)
