"""Django's task framework (``django.tasks``) on Celery workers, results from our table.

``TASKS = {"default": {"BACKEND": "django_celery_results.tasks.CeleryBackend"}}`` sends
every ``@task`` function's ``enqueue()`` to Celery, and ``get_result()`` reads the row the
workers write. Django 6.0 or later: on older Django this module still imports (Celery's
``autodiscover_tasks()`` imports every app's ``tasks`` module), but its names raise an
``ImportError`` that says so.
"""

from __future__ import annotations

from typing import Any

import django

if django.VERSION >= (6, 0):
    from .backend import CeleryBackend
    from .runner import RUNNER_NAME, run_django_task

    __all__ = ["RUNNER_NAME", "CeleryBackend", "run_django_task"]

else:  # pragma: no cover - the Django 5.2 leg runs this

    def __getattr__(name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise ImportError(
            f"django_celery_results.tasks.{name} needs Django 6.0 or later, which brings "
            f"django.tasks; this is Django {django.get_version()}. Upgrade Django to use "
            "the TASKS backend, or keep sending Celery tasks as before."
        )
