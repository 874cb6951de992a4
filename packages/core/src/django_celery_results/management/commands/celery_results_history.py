"""``manage.py celery_results_history``: count every row not yet counted, with a progress bar.

Run it once after upgrading, so a table of millions of rows shows its past at once (the
workers' catch-ups would get there too, a bounded slice at a time). It also names the
exception type of stored JSON failures written before the column existed.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import router

from ...history.rollup import Progress, catch_up
from ...models import TaskResult

#: Characters of the progress bar.
BAR = 30
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


def _total(before: Progress, step: Progress) -> Progress:
    """The progress of the whole command: earlier catch-ups' rows and this one's."""
    return Progress(rows=before.rows + step.rows)
