"""An async view of the test suite: awaits a task's result, as an ASGI app would."""

from __future__ import annotations

from typing import Any

from celery.result import AsyncResult
from django.http import HttpRequest, JsonResponse

from django_celery_results import aio

#: The Celery app results are read with; a test sets it (Celery's current app is kept
#: per thread, and an async view runs in the event loop's).
app: Any = None


async def task_result(request: HttpRequest, task_id: str) -> JsonResponse:
    """Wait for the task without a thread; answer with its result or its error."""
    try:
        result = AsyncResult(task_id, app=app)
        value = await aio.wait(result, timeout=float(request.GET["timeout"]))
    except Exception as exc:  # the task's own error, or Celery's TimeoutError
        return JsonResponse({"error": type(exc).__name__, "message": str(exc)}, status=500)
    return JsonResponse({"result": value})
