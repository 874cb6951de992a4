"""JSON views of task and group states, read through the current Celery app."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any

from celery import states
from celery.result import AsyncResult, GroupResult
from celery.utils import get_full_cls_name
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError
from django.http import HttpRequest, JsonResponse
from kombu.utils.encoding import safe_repr

from .conf import app_settings, result_views_refused

logger = logging.getLogger(__name__)

__all__ = ["group_status", "is_group_successful", "is_task_successful", "task_status"]

View = Callable[..., JsonResponse]


def unreadable(what: str, error: BaseException) -> str:
    """Why a stored value could not be read, for the ``error`` key of a response."""
    return f"The stored {what} cannot be read: {type(error).__name__}: {error}"[:500]


def _restored(group_id: str) -> GroupResult | JsonResponse | None:
    """The stored group, None when there is none, or the answer for a corrupt group row."""
    try:
        return GroupResult.restore(group_id)
    except DatabaseError:
        raise
    except Exception as exc:  # a corrupt group row
        error = unreadable(f"group {group_id}", exc)
        return JsonResponse({"group": {"id": group_id, "results": []}, "error": error})


def _member(task: AsyncResult, read: Callable[[AsyncResult], dict[str, Any]]) -> dict[str, Any]:
    """One group member's entry; a member whose row cannot be read says so, alone."""
    try:
        return encodable(read(task))
    except DatabaseError:
        raise
    except Exception as exc:  # a corrupt row: the other members are still answered
        return {"id": task.id, "status": None, "error": unreadable(f"result of {task.id}", exc)}


def encodable(entry: dict[str, Any]) -> dict[str, Any]:
    """``entry``, once it is known to encode as the response will (else it raises).

    A result decoded by another serializer (bytes from msgpack, an object from pickle)
    may not be JSON: it fails here, for its own entry, not in the whole response.
    """
    json.dumps(entry, cls=DjangoJSONEncoder)
    return entry


def may_read_results(request: HttpRequest) -> bool:
    """Whether ``request`` may read results here (``RESULT_VIEWS_PERMISSION``).

    ``None`` lets anyone read them, as upstream; a permission (``"app.codename"``) asks
    the user for it; a callable is asked with the request.
    """
    rule = app_settings().RESULT_VIEWS_PERMISSION
    if rule is None:
        return not result_views_refused()  # set, but invalid: closed, not open
    try:
        if callable(rule):
            return bool(rule(request))
        user = request.user
        return bool(user.is_authenticated and user.has_perm(rule))
    except Exception:  # a rule that fails, or no AuthenticationMiddleware: refuse
        logger.exception("RESULT_VIEWS_PERMISSION could not decide; the request is refused")
        return False


def results_permission_required(view: View) -> View:
    """Answer 403 (JSON, the views' own shape) to requests that may not read results."""

    @functools.wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
        if not may_read_results(request):
            return JsonResponse(
                {"error": "You may not read task results here (RESULT_VIEWS_PERMISSION)."},
                status=403,
            )
        return view(request, *args, **kwargs)

    return guarded


@results_permission_required
def is_task_successful(request: HttpRequest, task_id: str) -> JsonResponse:
    """Return whether a task succeeded.

    Args:
        request: the HTTP request.
        task_id: the Celery task id.

    Returns:
        ``{"task": {"id": task_id, "executed": bool}}``.
    """
    try:
        executed = AsyncResult(task_id).successful()
    except DatabaseError:
        raise
    except Exception as exc:  # a corrupt row
        error = unreadable(f"result of {task_id}", exc)
        return JsonResponse({"task": {"id": task_id, "executed": None, "error": error}})
    return JsonResponse({"task": {"id": task_id, "executed": executed}})


@results_permission_required
def task_status(request: HttpRequest, task_id: str) -> JsonResponse:
    """Return the state and result of a task.

    In the exception states (FAILURE, RETRY, REVOKED) ``result`` is the ``repr`` of the
    exception, and ``exc`` (its full class name) and ``traceback`` are added.

    Args:
        request: the HTTP request.
        task_id: the Celery task id.

    Returns:
        ``{"task": {"id": task_id, "status": state, "result": result}}``.
    """
    try:
        response_data = encodable(_task_status(AsyncResult(task_id)))
    except DatabaseError:
        raise
    except Exception as exc:  # a corrupt row
        response_data = {
            "id": task_id,
            "status": None,
            "result": None,
            "error": unreadable(f"result of {task_id}", exc),
        }
    return JsonResponse({"task": response_data})


def _task_status(result: AsyncResult) -> dict[str, Any]:
    state, retval = result.state, result.result
    response_data: dict[str, Any] = {"id": result.id, "status": state, "result": retval}
    if state in states.EXCEPTION_STATES:
        response_data.update(
            {
                "result": safe_repr(retval),  # type: ignore[no-untyped-call]  # kombu: untyped
                "exc": get_full_cls_name(retval.__class__),
                "traceback": result.traceback,
            }
        )
    return response_data


@results_permission_required
def is_group_successful(request: HttpRequest, group_id: str) -> JsonResponse:
    """Return whether each task of a group succeeded.

    Args:
        request: the HTTP request.
        group_id: the Celery group id.

    Returns:
        ``{"group": {"id": group_id, "results": [{"id": task_id, "executed": bool}]}}``;
        ``results`` is empty when the group is unknown.
    """
    group = _restored(group_id)
    if isinstance(group, JsonResponse):
        return group
    results = [
        _member(task, lambda t: {"id": t.id, "executed": t.successful()}) for task in group or ()
    ]
    return JsonResponse({"group": {"id": group_id, "results": results}})


@results_permission_required
def group_status(request: HttpRequest, group_id: str) -> JsonResponse:
    """Return the state and result of each task of a group.

    Unlike upstream, which fails with an ``AttributeError`` (a 500 page) for a group that
    was never stored, an unknown group gets a 404 with the same shape, an empty
    ``results`` list and an ``error`` message.

    Args:
        request: the HTTP request.
        group_id: the Celery group id.

    Returns:
        ``{"group": {"id": group_id, "results": [{"result": result, "status": state}]}}``.
    """
    group = _restored(group_id)
    if isinstance(group, JsonResponse):
        return group
    if group is None:
        return JsonResponse(
            {"group": {"id": group_id, "results": []}, "error": f"Group {group_id} not found."},
            status=404,
        )
    results = [
        _member(task, lambda t: {"result": t.result, "status": t.status}) for task in group.results
    ]
    return JsonResponse({"group": {"id": group_id, "results": results}})
