"""A real worker logs what ``manage.py check`` would say of our settings when it starts."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from .conftest import BROKERS, EXAMPLE, TIMEOUT, Brokers, Combo, Worker

pytestmark = pytest.mark.django_db


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
    command = [
        sys.executable, "-m", "celery", "-A", "demo_project", "worker", "--pool=solo",
        "--loglevel=info", "-Q", queue, "-n", f"{queue}@%h", f"--logfile={log}",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip
    process = subprocess.Popen(
        command,
        cwd=EXAMPLE,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        text = ""
        while "django_celery_results.E004" not in text and time.monotonic() < deadline:
            if process.poll() is not None:
                break
            time.sleep(0.2)
            text = log.read_text() if log.exists() else ""
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
    assert "django_celery_results.E004" in text, text
    assert "ERROR" in text
    assert "HINT:" in text
