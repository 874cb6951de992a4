"""What the ``django.tasks`` backend's tests share: the apps, the setting, a worker's writes."""

from __future__ import annotations

import importlib
import uuid
from typing import Any

import django
import pytest
from celery import Celery
from celery.app.task import Context

from tests.brokers import REDIS_URL

NEEDS_DJANGO_6 = pytest.mark.skipif(
    django.VERSION < (6, 0),
    reason="django.tasks needs Django 6.0+: the Python 3.13 / Django 6.1 leg runs this",
)
BACKEND = "django_celery_results.tasks.CeleryBackend"

#: The app ``OPTIONS["APP"]`` names in these tests (a module attribute, as in a project).
APP = Celery("tasks-tests", set_as_current=False)
APP.conf.update(
    broker_url=REDIS_URL,
    result_backend="django-db",
    result_extended=True,
    task_default_queue=f"tasks-tests-{uuid.uuid4().hex[:8]}",
    task_publish_retry=False,
)
#: An app that stores results elsewhere: the check must refuse it.
ELSEWHERE = Celery("elsewhere", set_as_current=False)
ELSEWHERE.conf.result_backend = "cache+memory://"


def tasks_setting(**options: Any) -> dict[str, Any]:
    return {"default": {"BACKEND": BACKEND, "QUEUES": [], "OPTIONS": options}}


def jobs() -> Any:
    return importlib.import_module("demo_library.jobs")


def store(
    task_id: str, state: str, result: Any = None, traceback: str | None = None, **request: Any
) -> None:
    """Write a state of ``task_id`` as the worker does, from a runner's request."""
    context = Context(
        id=task_id,
        task="django_celery_results.run_django_task",
        args=request.pop("args", [2, 3]),
        kwargs=request.pop("kwargs", {}),
        hostname=request.pop("hostname", "w1@host"),
        retries=request.pop("retries", 0),
        delivery_info={"routing_key": "celery"},
        django_task=request.pop("path", "demo_library.jobs.add"),
        **request,
    )
    APP.backend.store_result(task_id, result, state, traceback=traceback, request=context)
