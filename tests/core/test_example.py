"""The README's first command: the demo runs a real worker and stores every outcome."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "demo_project.settings",
        "DEMO_SQLITE_PATH": str(tmp_path / "demo.sqlite3"),
        "DEMO_BROKER_FOLDER": str(tmp_path / "broker"),
    }
    env.pop("DEMO_DATABASE", None)
    env.pop("DEMO_BROKER_URL", None)
    completed = subprocess.run(
        [sys.executable, "example/manage.py", "demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    output = completed.stdout
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "Stored task results (14 rows in TaskResult)" in output
    lines = output.splitlines()
    assert any(line.startswith("fail ") and " FAILURE " in line for line in lines)
    assert any(line.startswith("flaky ") and " SUCCESS " in line for line in lines)
    assert any(line.startswith("slow ") and " SUCCESS " in line for line in lines)
    # TRACK_PENDING is on in the demo: every finished task shows a waiting time.
    [slow] = [line.split() for line in lines if line.startswith("slow ")]
    waiting, processing = float(slow[3].rstrip("s")), float(slow[4].rstrip("s"))
    assert waiting > 0
    assert processing >= 1.0  # the task sleeps a second
    assert "Chord callback tsum: 46" in output
    assert "Stored group result: <Group: " in output
    assert "/admin/django_celery_results/taskresult/" in output
    # The admin hint names an interpreter that has the demo's packages: it runs as printed.
    [hint] = [line.split() for line in lines if line.endswith(" createsuperuser")]
    checked = subprocess.run(
        [*hint[:-1], "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stderr[-3000:]
