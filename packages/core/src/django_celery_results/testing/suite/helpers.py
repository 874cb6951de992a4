"""Small helpers shared by the suite's modules."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from celery.app.task import Context
from django.utils import timezone

from ...drivers import BaseDriver, TaskRow
from ...models import TaskResult


def new_id() -> str:
    """Return a fresh task id."""
    return str(uuid.uuid4())


def row(task_id: str, status: str, **columns: Any) -> TaskRow:
    """Return a JSON-encoded ``TaskRow`` whose result names its state."""
    values: dict[str, Any] = {
        "task_id": task_id,
        "status": status,
        "content_type": "application/json",
        "content_encoding": "utf-8",
        "result": f'"{status}"',
        "date_done": timezone.now(),
    }
    values.update(columns)
    return TaskRow(**values)


def request(task_id: str, **fields: Any) -> Context:
    """Return a worker request for ``task_id`` as Celery passes it to the backend."""
    values: dict[str, Any] = {
        "id": task_id,
        "task": "tests.add",
        "args": [1, 2],
        "kwargs": {"z": 3},
        "argsrepr": "(1, 2)",
        "kwargsrepr": "{'z': 3}",
        "hostname": "celery@conformance",
        "delivery_info": {"routing_key": "celery"},
    }
    values.update(fields)
    return Context(values)


def loads(value: str | None) -> Any:
    """Decode a JSON column that must not be NULL."""
    assert value is not None, "the column is NULL"
    return json.loads(value)


def column_length(model: type[Any], field: str) -> int:
    """Return the ``max_length`` of a text column."""
    return int(model._meta.get_field(field).max_length)


def stored(task_id: str) -> TaskResult:
    """Return the stored row of ``task_id`` (from the alias under test)."""
    return TaskResult.objects.get(task_id=task_id)


def status_of(task_id: str) -> str:
    """Return the stored state of ``task_id``."""
    return stored(task_id).status


def last_id(driver: BaseDriver) -> int:
    """Return the last id the task table drew; skip where the driver cannot say."""
    usage = driver.ops.id_usage()
    if usage is None:
        pytest.skip(f"{type(driver).__name__} does not report its id usage")
    return usage.last
