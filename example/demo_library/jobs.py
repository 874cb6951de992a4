"""Background work written against ``django.tasks`` alone (Django 6.0+)."""

import asyncio
from typing import Any

from celery import current_task
from django.tasks import TaskContext, task


@task
def add(x: int, y: int) -> int:
    """Succeed."""
    return x + y


@task
def echo(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """Return what it was given, to show args and kwargs arrive as JSON values."""
    return {"args": list(args), "kwargs": kwargs}


@task
def fail(message: str) -> None:
    """Fail with a traceback."""
    raise ValueError(message)


@task
def flaky(value: int) -> int:
    """Ask Celery for one retry (a Celery shop's way to retry), then succeed."""
    if current_task.request.retries == 0:
        raise current_task.retry(countdown=0.5)
    return value


@task(priority=50)
def delivery() -> dict[str, Any]:
    """Say how the broker delivered this task: its priority and routing key."""
    info = current_task.request.delivery_info or {}
    return {"priority": info.get("priority"), "routing_key": info.get("routing_key")}


@task
async def async_add(x: int, y: int) -> int:
    """An async task function, run by the worker in an event loop."""
    await asyncio.sleep(0.01)
    return x + y


@task(takes_context=True)
def attempt(context: "TaskContext[Any, Any]") -> dict[str, Any]:
    """Report what the task context says about this run."""
    return {"id": context.task_result.id, "attempt": context.attempt}
