"""The example library's app: records Django's task signals when asked (the e2e tests)."""

import json
import os
from typing import Any

from django.apps import AppConfig


class DemoLibraryConfig(AppConfig):
    """Connects the signal log of ``DEMO_TASK_SIGNALS_FILE`` (Django 6.0+)."""

    name = "demo_library"

    def ready(self) -> None:
        """Log ``task_started``/``task_finished`` to the file, one JSON line each."""
        path = os.environ.get("DEMO_TASK_SIGNALS_FILE")
        if not path:
            return
        from django.tasks.signals import task_finished, task_started

        def record(name: str, task_result: Any, **kwargs: Any) -> None:
            stored = task_result.task.get_backend().get_result(task_result.id)
            line = {
                "signal": name,
                "id": task_result.id,
                "status": str(task_result.status),
                "stored_status": str(stored.status),
                "sender": f"{kwargs['sender'].__module__}.{kwargs['sender'].__qualname__}",
            }
            with open(path, "a", encoding="utf-8") as log:
                log.write(json.dumps(line) + "\n")

        task_started.connect(
            lambda **kw: record("task_started", **kw), weak=False, dispatch_uid="demo.started"
        )
        task_finished.connect(
            lambda **kw: record("task_finished", **kw), weak=False, dispatch_uid="demo.finished"
        )
