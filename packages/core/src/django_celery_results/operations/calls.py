"""A task's real call (args, kwargs, routing), stored for the admin's Retry (``STORE_CALLS``).

``task_args`` and ``task_kwargs`` hold Celery's display repr (``argsrepr``): cut at 1,024
characters, often masked on purpose, and absent without ``result_extended``. Replaying
it would send something else than the task received. With ``STORE_CALLS`` on, each write
of a task also stores, in the row's meta, the args and kwargs the worker received,
encoded with the task's own serializer, and the exchange and routing key it came by.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from typing import Any

from kombu.serialization import dumps, loads, registry

from ..conf import app_settings

logger = logging.getLogger(__name__)

#: Pickle's content type: never decoded here.
PICKLE = "application/x-python-serialize"
#: The key of the row's meta the call is stored under (never returned to Celery).
META_KEY = "stored_call"


@dataclass(frozen=True)
class Call:
    """A stored call, decoded: what Retry sends again."""

    args: list[Any]
    kwargs: dict[str, Any]
    exchange: str
    routing_key: str
    serializer: str


def wanted(task_name: str | None) -> bool:
    """Does ``STORE_CALLS`` store the calls of ``task_name``?"""
    stored = app_settings().STORE_CALLS
    if stored is True:
        return True
    return bool(stored) and task_name in stored  # type: ignore[operator]


def encode(app: Any, request: Any) -> dict[str, Any] | None:
    """The call of ``request`` (a worker's task request), or None when not wanted or unknown."""
    name = getattr(request, "task", None)
    args, kwargs = getattr(request, "args", None), getattr(request, "kwargs", None)
    if not isinstance(name, str) or not wanted(name) or not isinstance(args, list | tuple):
        return None
    task = app.tasks.get(name)
    serializer = getattr(task, "serializer", None) or app.conf.task_serializer
    try:
        encoded = dumps([list(args), dict(kwargs or {})], serializer)  # type: ignore[no-untyped-call]
        content_type, content_encoding, body = encoded
    except Exception:  # the result is stored all the same, only not retriable
        logger.warning("The call of task %s could not be stored", request.id, exc_info=True)
        return None
    binary = isinstance(body, bytes)
    delivery = getattr(request, "delivery_info", None) or {}
    return {
        "content_type": content_type,
        "content_encoding": content_encoding,
        "body": base64.b64encode(body).decode("ascii") if binary else body,
        "binary": binary,
        "serializer": serializer,
        "exchange": delivery.get("exchange") or "",
        "routing_key": delivery.get("routing_key") or "",
    }


def decode(app: Any, stored: Any) -> Call:
    """Decode a stored call; ``ValueError`` says why it cannot be sent again.

    It is decoded only with a serializer the project's workers accept
    (``accept_content``), and never from pickle: decoding pickle runs code, and whoever
    can write the results table should not be able to run it in the admin's process.
    """
    if not isinstance(stored, dict) or "body" not in stored:
        raise ValueError("no call was stored for it (STORE_CALLS was off)")
    content_type = str(stored.get("content_type") or "")
    # The serializer is named by the content type, through kombu's registry: the stored
    # "serializer" field is not trusted to say what the bytes are.
    name = registry.type_to_name.get(content_type)
    if name == "pickle" or content_type == PICKLE or stored.get("serializer") == "pickle":
        raise ValueError("its call is stored as pickle, which the admin never decodes")
    accepted = set(app.conf.accept_content or ())
    if name is None or not ({name, content_type} & accepted):
        raise ValueError(f"its call is stored as {content_type}, which workers do not accept")
    body = stored["body"]
    if stored.get("binary"):
        body = base64.b64decode(body)
    try:
        decoded = loads(  # type: ignore[no-untyped-call]
            body,
            content_type,
            str(stored.get("content_encoding") or "utf-8"),
            accept=[content_type],
        )
        args, kwargs = decoded
    except Exception as exc:  # a broken payload is a reason, never a crash
        raise ValueError(f"its stored call cannot be decoded ({type(exc).__name__})") from exc
    if not isinstance(args, list | tuple) or not isinstance(kwargs, dict):
        raise ValueError("its stored call is not (args, kwargs)")
    return Call(
        list(args),
        kwargs,
        str(stored.get("exchange") or ""),
        str(stored.get("routing_key") or ""),
        name,
    )
