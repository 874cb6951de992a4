"""The exception type a failure is filed under: ``module.Name``, a builtin by its name alone.

Named when a FAILURE is written (from the exception, or Celery's JSON form of it) and,
for rows stored before the column existed, from a stored JSON result; a result in any
other serializer is never decoded (pickle runs code).
"""

from __future__ import annotations

import json
from typing import Any

from celery import states

#: The column's length: a longer name is cut to it.
MAX_LENGTH = 255


def exception_type_of(result: Any, state: str) -> str | None:
    """The type of the exception ``result`` a FAILURE write stores; None for other states.

    ``result`` is what Celery passes a backend: the exception itself (pickle), or the
    dict ``prepare_exception`` made of it (``exc_type``, ``exc_module``).
    """
    if state != states.FAILURE:
        return None
    if isinstance(result, BaseException):
        kind = type(result)
        return qualified(kind.__module__, kind.__name__)  # as Celery's JSON form names it
    if isinstance(result, dict) and isinstance(result.get("exc_type"), str):
        module = result.get("exc_module")
        return qualified(module if isinstance(module, str) else None, result["exc_type"])
    return None


def stored_exception_type(content_type: str | None, result: str | None) -> str | None:
    """The exception type of a stored JSON failure; None when it can't be read safely."""
    if not result or content_type != "application/json":
        return None
    try:
        value = json.loads(result)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than Python reads
        return None
    return exception_type_of(value, states.FAILURE)


def qualified(module: str | None, name: str) -> str | None:
    """``module.name``, or ``name`` for builtins; cut to :data:`MAX_LENGTH`."""
    if not name:
        return None
    text = name if module in (None, "", "builtins") else f"{module}.{name}"
    return text[:MAX_LENGTH]
