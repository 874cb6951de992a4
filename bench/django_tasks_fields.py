"""Which ``TaskResult`` fields each ``django.tasks`` backend for Celery fills, measured.

Usage (Python 3.12+, Django 6; django-tasks-celery comes from PyPI for this run only):

    UV_PROJECT_ENVIRONMENT=.venv-py3.13 uv run --all-groups --python 3.13 \\
        --with django-tasks-celery==0.1.1 python bench/django_tasks_fields.py

For each backend (ours; ``django_tasks_celery.CeleryBackend`` with ``result_extended`` on,
then off) a real ``celery worker`` of the example project runs on a Redis broker and a
throwaway SQLite file; this process enqueues ``demo_library.jobs.echo(1, "a", key="v")``
(succeeds) and ``demo_library.jobs.fail("boom")`` (raises), asks Django's
``Task.get_result()`` for the first at once, waits until each is finished, reads each
result back with the backend's ``get_result()`` and prints, per field, what each backend
returned; last, what ``get_result()`` says of an id that was
never sent. Printed as a Markdown table (``docs/django-tasks.md``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "example"
#: Label: (TASKS backend, result_extended). django-tasks-celery reads Celery's meta, so it
#: runs both ways; ours stores these tasks in full either way.
BACKENDS = {
    "django-celery-results": ("django_celery_results.tasks.CeleryBackend", True),
    "django-tasks-celery 0.1.1": ("django_tasks_celery.CeleryBackend", True),
    "django-tasks-celery 0.1.1, result_extended off": ("django_tasks_celery.CeleryBackend", False),
}
FIELDS = (
    "status",
    "enqueued_at",
    "started_at",
    "last_attempted_at",
    "finished_at",
    "args",
    "kwargs",
    "worker_ids",
    "errors",
    "return_value",
)
TIMEOUT = 60.0


def environment(backend: str, extended: bool, folder: Path, queue: str) -> dict[str, str]:
    """The example project on ``backend``, a fresh SQLite file, Redis and ``queue``."""
    return {
        **os.environ,
        "DEMO_RESULT_EXTENDED": "1" if extended else "0",
        "DJANGO_SETTINGS_MODULE": "demo_project.settings",
        "DEMO_SQLITE_PATH": str(folder / "db.sqlite3"),
        "DEMO_BROKER_URL": "redis://127.0.0.1:6379/0",
        "DEMO_QUEUE": queue,
        "DEMO_TASKS_BACKEND": backend,
        # django-tasks-celery registers each function as a Celery task when its module
        # is imported: the worker must import it at start.
        "DEMO_CELERY_IMPORTS": "demo_library.jobs",
        "PYTHONPATH": str(EXAMPLE),
    }


def describe(result: Any, name: str) -> str:
    """What one field holds, short: a value, or that it is empty."""
    try:
        value = getattr(result, name)
    except ValueError as exc:  # return_value of a failure
        return f"raises ({exc})"
    if name == "errors":
        return ", ".join(e.exception_class_path for e in value) or "empty"
    if name == "worker_ids":
        return f"{len(value)} id(s)" if value else "empty"
    if value is None or value == [] or value == {}:
        return "empty"
    if name.endswith("_at"):
        return "set"
    return json.dumps(value, default=str)


def child(backend: str) -> None:
    """Enqueue, wait, read back (this process has the backend's settings)."""
    import django

    django.setup()
    import demo_library.jobs as jobs
    from celery.result import AsyncResult
    from django.tasks.exceptions import TaskResultDoesNotExist

    from demo_project.celery import app  # the project's app is current, as in a project

    assert app.main == "demo_project"
    outcome: dict[str, Any] = {}
    for label, task, args, kwargs in (
        ("success", jobs.echo, (1, "a"), {"key": "v"}),
        ("failure", jobs.fail, ("boom",), {}),
    ):
        sent = task.enqueue(*args, **kwargs)
        if label == "success":
            try:  # Django's own lookup, which checks the result's task
                task.get_result(sent.id)
                outcome["Task.get_result() at once"] = "works"
            except Exception as exc:
                outcome["Task.get_result() at once"] = f"raises {type(exc).__name__}"
        # Wait through Celery itself, so a get_result() that fails cannot hang the wait.
        AsyncResult(sent.id, app=app).get(timeout=TIMEOUT, propagate=False)
        try:
            result = task.get_backend().get_result(sent.id)
        except Exception as exc:
            failed = f"get_result() raises {type(exc).__name__}"
            outcome[label] = dict.fromkeys(FIELDS, failed)
            continue
        outcome[label] = {name: describe(result, name) for name in FIELDS}
    try:
        unknown = jobs.echo.get_backend().get_result(str(uuid.uuid4()))
        outcome["unknown id"] = f"returns status {unknown.status}"
    except TaskResultDoesNotExist:
        outcome["unknown id"] = "raises TaskResultDoesNotExist"
    print(json.dumps(outcome))


def run(backend: str, extended: bool) -> dict[str, Any]:
    """Start a worker on ``backend``, run :func:`child` against it, stop the worker."""
    with tempfile.TemporaryDirectory() as folder:
        queue = f"fields-{uuid.uuid4().hex[:8]}"
        env = environment(backend, extended, Path(folder), queue)
        python = sys.executable
        subprocess.run(
            [python, "manage.py", "migrate", "-v0"], cwd=EXAMPLE, env=env, check=True,
            capture_output=True,
        )  # fmt: skip
        worker = subprocess.Popen(
            [python, "-m", "celery", "-A", "demo_project", "worker", "--pool=prefork",
             "--concurrency=2", "--loglevel=warning", "-Q", queue, "-n", f"{queue}@%h",
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=EXAMPLE, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            done = subprocess.run(
                [python, __file__, "--child", backend],
                cwd=EXAMPLE, env=env, check=False, capture_output=True, text=True,
                timeout=4 * TIMEOUT,
            )  # fmt: skip
            if done.returncode:
                raise SystemExit(f"{backend} failed:\n{done.stderr[-3000:]}")
        finally:
            worker.terminate()
            worker.wait(timeout=30)
        return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    """Run both backends and print the fields side by side."""
    measured = {label: run(*how) for label, how in BACKENDS.items()}
    labels = list(measured)
    print("| outcome | field | " + " | ".join(labels) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in labels) + " |")
    for outcome in ("success", "failure"):
        for name in FIELDS:
            cells = [measured[label][outcome][name] for label in labels]
            print(f"| {outcome} | `{name}` | " + " | ".join(cells) + " |")
    cells = [measured[label]["Task.get_result() at once"] for label in labels]
    print("| just enqueued | `Task.get_result()` | " + " | ".join(cells) + " |")
    cells = [measured[label]["unknown id"] for label in labels]
    print("| id never sent | `get_result()` | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(sys.argv[2])
    else:
        main()
