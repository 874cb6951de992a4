"""``manage.py celery_results_stats``: counts, failure rate and timings per task name."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from ... import report
from ...checks import ID_USAGE_FIX, id_usage_warning
from ...drivers import driver_for_model
from ...models import TaskResult
from ...stats import TaskStats
from ...utils import MAX_SPAN, parse_span


def parse_since(value: str) -> datetime:
    """Read ``--since``: a span back from now (``90m``, ``24h``, ``7d``) or an ISO datetime."""
    span = parse_span(value)
    if span is not None:
        return timezone.now() - span
    try:
        parsed = parse_datetime(value)
        if parsed is not None and not timezone.is_aware(parsed):
            parsed = timezone.make_aware(parsed)
    except (ValueError, OverflowError):  # well formed, but no such date (2024-02-30)
        parsed = None
    if parsed is None:
        raise CommandError(
            f"--since {value!r} is neither a span such as 90m, 24h or 7d (at most "
            f"{MAX_SPAN.days:,} days) nor an existing ISO datetime such as 2026-11-24T08:00."
        )
    return parsed


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


class Command(BaseCommand):
    """Print per task name: rows by state, failure rate, waiting and processing time."""

    help = (
        "Print, per task name over a time window: finished tasks by state, failure rate, "
        "and p50/p95/p99 waiting time (sent → started, with TRACK_PENDING) and processing "
        "time (started → done, with track_started), exact over the window's whole minutes "
        "from the rolled-up history; then the incidents, stuck tasks by worker and the "
        "PENDING backlog: the dashboard's numbers."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        """Add --since, --task and --format."""
        parser.add_argument(
            "--since",
            default="24h",
            help="Rows done since: a span back from now (90m, 24h, 7d) or an ISO datetime "
            "(default: 24h).",
        )
        parser.add_argument(
            "--task",
            action="append",
            dest="tasks",
            metavar="NAME",
            help="Only this task name (repeat for several).",
        )
        parser.add_argument("--format", choices=["table", "json"], default="table")
        parser.add_argument(
            "--max-rows",
            type=int,
            default=None,
            help="Deprecated and ignored: the numbers come from the history, whole.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Compute and print the statistics."""
        since = parse_since(options["since"])
        if options["max_rows"] is not None:
            self.stderr.write("--max-rows is deprecated and ignored: every row is counted.")
        numbers = report.build(since, task_names=options["tasks"])
        # The ids are drawn on the database rows are written to.
        writer = driver_for_model(TaskResult)
        usage = writer.ops.id_usage()
        if options["format"] == "json":
            document: dict[str, Any] = {
                **numbers.as_dict(),
                "since": since.isoformat(),
                "id_usage": None
                if usage is None
                else {"last": usage.last, "maximum": usage.maximum, "type": usage.type},
            }
            self.stdout.write(json.dumps(document, indent=2))
            return
        self.stdout.write(
            f"Tasks finished from {numbers.covered_since:%Y-%m-%d %H:%M} to "
            f"{numbers.covered_until:%Y-%m-%d %H:%M} UTC, whole minutes (seconds)"
        )
        if numbers.history.behind:
            self.stdout.write(
                "(rows are still being counted: run celery_results_history to count them all)"
            )
        self.stdout.write(self._table(numbers.tasks))
        for line in self._summary(numbers):
            self.stdout.write(line)
        warning = None if usage is None else id_usage_warning(writer.alias, usage)
        if warning is not None:
            self.stderr.write(f"Warning: {warning} {ID_USAGE_FIX}")

    def _summary(self, numbers: report.Report) -> list[str]:
        """The dashboard's other numbers: exceptions, stuck tasks, backlog."""
        lines = []
        if numbers.incidents:
            top = ", ".join(
                f"{e.type} in {e.task_name or '(no name)'}={e.count} (e.g. {e.example})"
                for e in numbers.incidents[: report.TOP]
            )
            lines.append(f"Incidents: {top}")
        stuck_after = int(numbers.stuck_after.total_seconds())
        for what, count, attribute in (
            ("on lost workers (registered, no longer live)", numbers.lost, "lost"),
            (
                f"running too long (past their task's p99 run time, or {stuck_after} s)",
                numbers.overdue,
                "overdue",
            ),
        ):
            by_worker = ", ".join(
                f"{w.worker or '(no worker)'}={getattr(w, attribute)}"
                for w in numbers.workers
                if getattr(w, attribute)
            )
            lines.append(
                f"Stuck {what}: {count}{'+' if numbers.stuck_capped else ''}"
                + (f" ({by_worker})" if by_worker else "")
            )
        if numbers.backlog is not None:
            backlog = numbers.backlog
            oldest = (
                ""
                if backlog.oldest is None
                else f", oldest sent {backlog.oldest:%Y-%m-%d %H:%M:%S}"
            )
            lines.append(
                f"PENDING backlog: {backlog.count}{'+' if backlog.capped else ''}{oldest}"
            )
            if backlog.unconsumed is None:
                lines.append(
                    "Unconsumed PENDING: not judged (no worker registered, or one consumes "
                    "through a fanout or headers exchange)"
                )
            else:
                keys = ", ".join(f"{key}={n}" for key, n in backlog.unconsumed_queues.items())
                lines.append(
                    f"Unconsumed PENDING (no live worker consumes the routing key): "
                    f"{backlog.unconsumed}" + (f" ({keys})" if keys else "")
                )
        return lines

    def _table(self, stats: list[TaskStats]) -> str:
        header = [
            "task",
            "total",
            "states",
            "failed",
            "wait p50",
            "wait p95",
            "wait p99",
            "run p50",
            "run p95",
            "run p99",
        ]
        lines = [header]
        for entry in stats:
            rate = entry.failure_rate
            lines.append(
                [
                    entry.task_name or "(no name)",
                    str(entry.total),
                    " ".join(f"{state}={n}" for state, n in sorted(entry.states.items())),
                    "-" if rate is None else f"{rate:.1%}",
                    _seconds(entry.waiting.p50),
                    _seconds(entry.waiting.p95),
                    _seconds(entry.waiting.p99),
                    _seconds(entry.processing.p50),
                    _seconds(entry.processing.p95),
                    _seconds(entry.processing.p99),
                ]
            )
        if len(lines) == 1:
            return "No task finished in this window."
        widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
        return "\n".join(
            "  ".join(
                cell.ljust(w) if i < 3 else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(line, widths, strict=True))
            )
            for line in lines
        )
