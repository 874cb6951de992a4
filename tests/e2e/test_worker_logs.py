"""What a real worker (and beat) log: our checks at start, and each result they lose."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import BROKERS, EXAMPLE, TIMEOUT, Brokers, Combo, Worker, client_app

pytestmark = pytest.mark.django_db


def run_until(
    command: list[str],
    env: dict[str, str],
    log: Path,
    wanted: str,
    meanwhile: Callable[[], object] | None = None,
) -> str:
    """Run ``command`` until its log file holds ``wanted`` (or it exits, or time runs out).

    ``meanwhile`` is called once the process runs (to send it a task, say).
    """
    process = subprocess.Popen(
        command,
        cwd=EXAMPLE,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    text = ""
    try:
        if meanwhile is not None:
            meanwhile()
        deadline = time.monotonic() + TIMEOUT
        while wanted not in text and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
            text = log.read_text() if log.exists() else ""
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    return log.read_text() if log.exists() else text


def solo_worker(queue: str, log: Path) -> list[str]:
    """The command of a one-process worker of the example project, logging to ``log``."""
    return [
        sys.executable, "-m", "celery", "-A", "demo_project", "worker", "--pool=solo",
        "--loglevel=info", "-Q", queue, "-n", f"{queue}@%h", f"--logfile={log}",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip


def test_a_worker_logs_our_check_errors_at_start(brokers: Brokers, tmp_path: Path) -> None:
    """``NOTIFY`` on SQLite is a check error (E004): the worker's log says so at start.

    Celery's Django fixup runs Django's checks when a worker starts and discards them.
    """
    brokers.ensure("redis")
    queue = f"e2e-checks-{uuid.uuid4().hex[:8]}"
    worker = Worker(Combo("default", "generic", "redis", "solo"), queue=queue)
    env = {**worker.environment(), "DEMO_NOTIFY": "1", "DEMO_BROKER_URL": BROKERS["redis"]}
    env["DEMO_SQLITE_PATH"] = str(tmp_path / "checks.sqlite3")
    log = tmp_path / "worker.log"
    command = solo_worker(queue, log)
    text = run_until(command, env, log, "django_celery_results.E004")
    assert "django_celery_results.E004" in text, text
    assert "ERROR" in text
    assert "HINT:" in text


def test_beat_logs_our_check_errors_at_start(brokers: Brokers, tmp_path: Path) -> None:
    """Beat sends the daily cleanup: our checks' errors show in its log at start too."""
    brokers.ensure("redis")
    worker = Worker(Combo("default", "generic", "redis", "solo"), queue="e2e-beat-checks")
    env = {**worker.environment(), "DEMO_NOTIFY": "1", "DEMO_BROKER_URL": BROKERS["redis"]}
    env["DEMO_SQLITE_PATH"] = str(tmp_path / "beat.sqlite3")
    log = tmp_path / "beat.log"
    command = [
        sys.executable, "-m", "celery", "-A", "demo_project", "beat", "--loglevel=info",
        f"--schedule={tmp_path / 'schedule'}", f"--logfile={log}",
    ]  # fmt: skip
    text = run_until(command, env, log, "django_celery_results.E004")
    assert "django_celery_results.E004" in text, text


def test_a_worker_names_each_result_it_loses(brokers: Brokers, tmp_path: Path) -> None:
    """The database can't be reached: the worker's log names the task and the lost state."""
    brokers.ensure("redis")
    queue = f"e2e-lost-{uuid.uuid4().hex[:8]}"
    combo = Combo("default", "generic", "redis", "solo")
    worker = Worker(combo, queue=queue)
    env = {**worker.environment(), "DEMO_BROKER_URL": BROKERS["redis"]}
    env["DEMO_SQLITE_PATH"] = str(tmp_path / "no-such-folder" / "results.sqlite3")
    log = tmp_path / "worker.log"
    command = solo_worker(queue, log)
    sent: list[str] = []

    def send() -> None:
        with client_app(combo, queue) as app:
            sent.append(app.send_task("demo_app.tasks.add", args=(1, 2)).id)

    text = run_until(command, env, log, "Lost the ", meanwhile=send)
    (task_id,) = sent
    assert f"state of task {task_id}: database 'default' refused the write" in text, text
    assert "unable to open database file" in text
