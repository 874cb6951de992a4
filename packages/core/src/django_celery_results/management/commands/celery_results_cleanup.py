"""``manage.py celery_results_cleanup``: apply the retention rules, or see what they would do."""

from __future__ import annotations

import json
from typing import Any

from celery import current_app
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ... import retention
from ...cleanup import (
    CleanupRefused,
    CleanupReport,
    Outcome,
    configured_steps,
    delete_dead_chord_counters,
    one_off_step,
)
from ...cleanup import run as run_cleanup
from ...conf import app_settings, known_states
from ...utils import MAX_SPAN, parse_span


def parse_older_than(value: str) -> Any:
    """Read ``--older-than``: a span such as ``12h``, ``30d`` or ``2w``, or seconds."""
    span = parse_span(value)
    if span is None:
        try:
            seconds = float(value)
        except ValueError:
            seconds = -1.0
        span = retention.as_keep(seconds) if retention.is_keep(seconds) else None
    if span is None:
        raise CommandError(
            f"--older-than {value!r} is not a span: give seconds or a span such as 12h, 30d or "
            f"2w, at most {MAX_SPAN.days:,} days."
        )
    return span


class Command(BaseCommand):
    """Delete expired task and group results by the retention rules, in short chunks."""

    help = (
        "Delete expired results by DJANGO_CELERY_RESULTS['RETENTION'] (Celery's "
        "result_expires for rows no rule matches), oldest first, in short transactions. "
        "--dry-run says what each rule would delete; --status/--task-name/--queue/"
        "--older-than run a one-off rule instead."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        """Add the selection, pacing and output options."""
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Count what each rule would delete (rows, oldest and newest date_done); "
            "delete nothing.",
        )
        parser.add_argument(
            "--rule",
            action="append",
            dest="rules",
            metavar="NAME",
            help="Run only this step: a rule's name or number, 'result_expires' or "
            "'groups' (repeat for several).",
        )
        one_off = parser.add_argument_group("one-off rule (instead of the configured ones)")
        one_off.add_argument("--status", action="append", metavar="STATE")
        one_off.add_argument("--task-name", metavar="NAME_OR_GLOB")
        one_off.add_argument("--queue", metavar="NAME_OR_GLOB")
        one_off.add_argument("--periodic-task-name", metavar="NAME_OR_GLOB")
        one_off.add_argument(
            "--older-than",
            type=parse_older_than,
            metavar="SPAN",
            help="Delete matching rows done longer ago than this (12h, 30d, 2w, seconds).",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            metavar="ROWS",
            help="Rows per chunk, each its own transaction (default: CLEANUP_BATCH_SIZE).",
        )
        parser.add_argument(
            "--max-seconds",
            type=float,
            metavar="SECONDS",
            help="Stop cleanly after the chunk running at this time; run again to go on.",
        )
        parser.add_argument("--format", choices=["text", "json"], default="text")

    def handle(self, *args: Any, **options: Any) -> None:
        """Run the cleanup and report each step."""
        if options["batch_size"] is not None and options["batch_size"] < 1:
            raise CommandError("--batch-size must be a whole number > 0.")
        if options["max_seconds"] is not None and options["max_seconds"] <= 0:
            raise CommandError("--max-seconds must be a number of seconds > 0.")
        try:
            steps = self._steps(options)
        except CleanupRefused as exc:
            raise CommandError(str(exc)) from exc
        self._text = options["format"] == "text"
        self._live = self._text and options["verbosity"] >= 1 and self.stdout.isatty()
        if not options["dry_run"] and not options["rules"] and not self._one_off(options):
            delete_dead_chord_counters(current_app.conf.result_expires, options["batch_size"])
        report = run_cleanup(
            steps,
            dry_run=options["dry_run"],
            batch_size=options["batch_size"],
            max_seconds=options["max_seconds"],
            progress=self._progress if self._live else None,
        )
        if options["format"] == "json":
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
        else:
            self._report(report, options["verbosity"])

    # -- selection -----------------------------------------------------------------------

    @staticmethod
    def _one_off(options: dict[str, Any]) -> bool:
        keys = ("status", "task_name", "queue", "periodic_task_name", "older_than")
        return any(options[key] is not None for key in keys)

    def _steps(self, options: dict[str, Any]) -> list[Any]:
        if self._one_off(options):
            if options["rules"]:
                raise CommandError("--rule runs a configured rule; leave it out of a one-off.")
            if options["older_than"] is None:
                raise CommandError(
                    "A one-off rule needs --older-than: how old a matching row must be to "
                    "be deleted (e.g. --older-than 30d)."
                )
            status = options["status"]
            states = known_states(app_settings().CUSTOM_STATES)
            for state in status or ():
                near = retention.near_miss(state, states)
                if near is not None:
                    raise CommandError(
                        f"--status {state!r} names a state no task has: did you mean {near!r}? "
                        "(Declare your own states in DJANGO_CELERY_RESULTS['CUSTOM_STATES'].)"
                    )
            rule = retention.Rule(
                name="one-off",
                keep=options["older_than"],
                status=None if status is None else frozenset(status),
                task_name=options["task_name"],
                periodic_task_name=options["periodic_task_name"],
                queue=options["queue"],
            )
            return [one_off_step(rule)]
        steps = configured_steps(current_app.conf.result_expires)
        wanted = options["rules"]
        if not wanted:
            return steps
        rules = app_settings().RETENTION
        names = {str(number): rule.name for number, rule in enumerate(rules, 1)}
        chosen = {names.get(name, name) for name in wanted}
        known = {step.name for step in steps}
        unknown = sorted(chosen - known)
        if unknown:
            raise CommandError(
                f"--rule {', '.join(unknown)}: no such step. This configuration runs: "
                f"{', '.join(step.name for step in steps) or 'nothing (no rule expires rows)'}."
            )
        return [step for step in steps if step.name in chosen]

    # -- output --------------------------------------------------------------------------

    def _progress(self, outcome: Outcome) -> None:
        rate = outcome.rows / outcome.seconds if outcome.seconds else 0.0
        self.stdout.write(
            f"\r{outcome.name}: {outcome.rows:,} rows deleted, {outcome.seconds:.1f} s "
            f"({rate:,.0f} rows/s)",
            ending="",
        )
        self.stdout.flush()

    def _report(self, report: CleanupReport, verbosity: int) -> None:
        if self._live:
            self.stdout.write("\r\033[K", ending="")
        verb = "would delete" if report.dry_run else "deleted"
        if not report.outcomes:
            self.stdout.write("Nothing to clean up: no rule, and result_expires keeps results.")
        for outcome in report.outcomes:
            if verbosity < 1:
                break
            line = f"{outcome.name} ({outcome.description}): {verb} {outcome.rows:,} rows"
            if report.dry_run and outcome.rows:
                line += f", date_done {outcome.oldest:%Y-%m-%d %H:%M:%S} to "
                line += f"{outcome.newest:%Y-%m-%d %H:%M:%S}"
            elif not report.dry_run:
                line += f" in {outcome.seconds:.2f} s"
            self.stdout.write(line)
        if verbosity >= 1 and report.outcomes:
            self.stdout.write(f"Total: {verb} {report.rows:,} rows in {report.seconds:.2f} s.")
        if verbosity >= 1 and report.history_pruned:
            self.stdout.write(
                f"History: pruned {report.history_pruned:,} buckets past their retention."
            )
        if verbosity >= 1 and report.workers_pruned:
            self.stdout.write(
                f"Workers: forgot {report.workers_pruned:,} silent for a week or more."
            )
        if not report.complete:
            self.stdout.write(
                self.style.WARNING(
                    "Stopped at --max-seconds before the end; run the command again to go on."
                )
            )
