"""``manage.py demo``: run a real worker, send example tasks, print what was stored."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from celery import chord, group
from celery.result import AsyncResult
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from demo_app import tasks
from django_celery_results.models import GroupResult, TaskResult

EXAMPLE_DIR = Path(__file__).resolve().parents[3]
WAIT_SECONDS = 60


class Command(BaseCommand):
    """Migrate, start a Celery worker, send tasks, and print the stored results."""

    help = __doc__

    def handle(self, *args: Any, **options: Any) -> None:
        """Run the demo; the worker is stopped whatever happens."""
        call_command("migrate", verbosity=0)
        for folder in ("queue", "processed", "control"):
            (Path(settings.BROKER_FOLDER) / folder).mkdir(parents=True, exist_ok=True)
        self.stdout.write("Starting a Celery worker (prefork, 2 processes)…")
        worker = start_worker()
        try:
            wait_until_ready(worker)
            sent = self.send_tasks()
            self.wait_for(sent)
            self.report(sent)
        finally:
            stop_worker(worker)
        manage = manage_command()
        self.stdout.write(
            "\nSee them in the admin:\n"
            f"  {manage} createsuperuser\n"
            f"  {manage} runserver\n"
            "  then open http://127.0.0.1:8000/admin/django_celery_results/taskresult/\n"
        )

    def send_tasks(self) -> dict[str, Any]:
        """Send one task of each kind; return their results by label."""
        self.stdout.write(
            "Sending tasks: add, fail, flaky (retries once), slow, a group, a chord…"
        )
        added = group(tasks.add.s(i, i) for i in range(5)).apply_async()
        added.save()  # a GroupResult row, so the group can be restored by id later
        return {
            "add": tasks.add.delay(2, 3),
            "fail": tasks.fail.delay("this task fails on purpose"),
            "flaky": tasks.flaky.delay(7),
            "slow": tasks.slow.delay(1.0),
            "group": added,
            "chord": chord(tasks.add.s(i, 10) for i in range(4))(tasks.tsum.s()),
        }

    def wait_for(self, sent: dict[str, Any]) -> None:
        """Wait until every result is ready, and check each outcome."""
        expected = {"add": 5, "flaky": 7, "slow": 1.0, "group": [0, 2, 4, 6, 8], "chord": 46}
        deadline = time.monotonic() + WAIT_SECONDS
        for label, result in sent.items():
            timeout = max(deadline - time.monotonic(), 1)
            if label == "fail":
                try:
                    result.get(timeout=timeout, propagate=False)
                except TimeoutError as exc:
                    raise CommandError(
                        f"the 'fail' task did not finish in {WAIT_SECONDS}s"
                    ) from exc
                if result.state != "FAILURE":
                    raise CommandError(f"the 'fail' task ended {result.state}, not FAILURE")
                continue
            try:
                value = result.get(timeout=timeout)
            except TimeoutError as exc:
                raise CommandError(
                    f"the {label!r} task did not finish in {WAIT_SECONDS}s"
                ) from exc
            if value != expected[label]:
                raise CommandError(
                    f"the {label!r} task returned {value!r}, not {expected[label]!r}"
                )

    def report(self, sent: dict[str, Any]) -> None:
        """Print the rows this run stored, read back from the database."""
        ids = task_ids(sent.values())
        rows = TaskResult.objects.filter(task_id__in=ids).order_by("date_created")
        self.stdout.write(f"\nStored task results ({rows.count()} rows in TaskResult):\n")
        header = (
            f"{'task':<22} {'state':<8} {'worker':<24} {'waiting':>9} {'processing':>10}  result"
        )
        self.stdout.write(header)
        self.stdout.write("-" * len(header))
        for row in rows:
            waiting, processing = seconds(row.waiting_time), seconds(row.processing_time)
            name = (row.task_name or "?").removeprefix("demo_app.tasks.")
            result = (row.result or "")[:40].replace("\n", " ")
            self.stdout.write(
                f"{name:<22} {row.status:<8} {(row.worker or '-'):<24} {waiting:>9} "
                f"{processing:>10}  {result}"
            )
        restored = GroupResult.objects.get(group_id=sent["group"].id)
        self.stdout.write(f"\nStored group result: {restored} with {len(sent['group'])} tasks")
        self.stdout.write(f"Chord callback tsum: {sent['chord'].get(timeout=5)}")
        self.stdout.write(
            "Waiting: sent → started (TRACK_PENDING records the send); processing: started → "
            f"done. Per task name: {manage_command()} celery_results_stats"
        )


def manage_command() -> str:
    """Return how to run ``manage.py`` with the demo's own interpreter, from here.

    Not ``uv run``: in the workspace it would install every member, and the MySQL
    driver's client does not build without MariaDB headers.
    """
    here = Path.cwd()
    return " ".join(
        os.path.relpath(path, here) if Path(path).is_relative_to(here) else str(path)
        for path in (sys.executable, EXAMPLE_DIR / "manage.py")
    )


def seconds(span: Any) -> str:
    """Format a timedelta as seconds, or "-" when it is not known."""
    return "-" if span is None else f"{span.total_seconds():.3f}s"


def task_ids(results: Any) -> list[str]:
    """Return the ids of every task behind ``results`` (groups, chords and their parts)."""
    ids: list[str] = []
    for result in results:
        if isinstance(result, AsyncResult):
            ids.append(result.id)
            if result.parent is not None:
                ids.extend(task_ids([result.parent]))
        children = getattr(result, "results", None)
        if children:
            ids.extend(task_ids(children))
    return ids


def start_worker() -> subprocess.Popen[bytes]:
    """Start ``celery worker`` for the example project in a process of its own."""
    command = [sys.executable, "-m", "celery", "-A", "demo_project", "worker"]
    # The expected failure would print its traceback: show only what the demo did not plan.
    loglevel = os.environ.get("DEMO_WORKER_LOGLEVEL", "critical")
    command += ["--pool=prefork", "--concurrency=2", f"--loglevel={loglevel}"]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": os.environ["DJANGO_SETTINGS_MODULE"]}
    return subprocess.Popen(command, cwd=EXAMPLE_DIR, env=env)


def wait_until_ready(worker: subprocess.Popen[bytes]) -> None:
    """Wait until the worker runs a first task (the filesystem broker has no ping)."""
    probe = tasks.add.delay(0, 0)
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise CommandError(f"the worker exited with code {worker.returncode}")
        if probe.ready():
            return
        time.sleep(0.2)
    raise CommandError(f"the worker did not start within {WAIT_SECONDS}s")


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    """Ask the worker to shut down (SIGTERM: warm shutdown), kill it if it lingers."""
    if worker.poll() is None:
        worker.terminate()
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=5)
