"""What a Celery task request or message says: its flags, its routing key, its text values.

A request may be anything that stands in for one (a custom ``Task.Request``, a test
double), so each value is used only when it has the type its column needs.
"""

from __future__ import annotations

from typing import Any

from celery.app.task import Context


def text(value: Any) -> str | None:
    """``value`` when it is text, else None (a request's attribute of another type)."""
    return value if isinstance(value, str) else None


def plain(value: Any, kinds: Any) -> Any:
    """``value`` when it is one of ``kinds`` (lists, tuples, dicts), else None."""
    return value if isinstance(value, kinds) else None


def routing_key(request: Any) -> str | None:
    """Return the routing key a worker's request was delivered with (Celery's ``queue``)."""
    delivery_info = getattr(request, "delivery_info", None)
    if not isinstance(delivery_info, dict):
        return None
    key = delivery_info.get("routing_key")
    return key if isinstance(key, str) and key else None


def ignore_flag(request: Any) -> bool | None:
    """The request's own ``ignore_result``, as Celery's ``mark_as_done`` read it.

    A worker's ``Context`` keeps a class-level default (False) that is not the message's
    flag: only a value set on the request counts there. Anything standing in for a
    request (a custom class, a test double) is asked as Celery asks it.
    """
    if isinstance(request, Context):
        flag = vars(request).get("ignore_result")
    else:
        flag = getattr(request, "ignore_result", None)
    return None if flag is None else bool(flag)


def result_ignored(app: Any, flag: bool | None, task_name: str | None) -> bool:
    """Return True when a task's result is not stored: its message's flag, else its task's.

    A task sent by name carries no flag (``None``); the worker then follows the task's
    definition, as Celery 5.6.3's ``get_actual_ignore_result`` does.
    """
    if flag is None:
        task = app.tasks.get(task_name or "")
        flag = task.ignore_result if task is not None else app.conf.task_ignore_result
    return bool(flag)
