"""The ``DJANGO_CELERY_RESULTS`` settings dict: defaults, types and validation."""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields
from datetime import timedelta
from typing import Any, Literal

from django.conf import settings
from django.core.signals import setting_changed

from . import retention

SETTING_NAME = "DJANGO_CELERY_RESULTS"


@dataclass(frozen=True)
class BatchWrites:
    """The ``BATCH_WRITES`` dict: how long and how many non-terminal states may wait."""

    #: Longest a queued non-terminal state waits before it is written, in milliseconds.
    max_delay_ms: float = 100.0
    #: Queued rows that are written at once, without waiting; also rows per statement.
    max_rows: int = 500


@dataclass(frozen=True)
class AppSettings:
    """Our keys of the ``DJANGO_CELERY_RESULTS`` dict, with their defaults.

    Every key is documented in ``docs/settings.md``.
    """

    #: Let the admin edit stored results (upstream's key).
    ALLOW_EDITS: bool = False
    #: Let the admin's search scan task args and kwargs (a full table scan per search).
    ADMIN_SEARCH_ARGS: bool = False
    #: A STARTED task older than this is "stuck" on the dashboard and in the metrics.
    STUCK_AFTER: timedelta = timedelta(hours=1)
    #: The bearer token the metrics view accepts besides a staff login (None: staff only).
    METRICS_TOKEN: str | None = None
    #: Vendor names (``connection.vendor``) whose driver is not loaded; the generic one serves.
    DISABLED_DRIVERS: tuple[str, ...] = ()
    #: How many times a write or read is retried after a transient database error.
    MAX_RETRIES: int = 5
    #: First pause before a retry, in seconds; it doubles with every attempt.
    RETRY_BACKOFF: float = 0.05
    #: Longest pause between two retries, in seconds.
    RETRY_BACKOFF_MAX: float = 2.0
    #: Rows deleted per transaction by ``cleanup`` and ``delete_expired``.
    CLEANUP_BATCH_SIZE: int = 10_000
    #: Record a PENDING row, stamped with the send time, for every task sent.
    TRACK_PENDING: bool = False
    #: Wake clients waiting on results by database notifications instead of polls
    #: (PostgreSQL's ``LISTEN``/``NOTIFY``).
    NOTIFY: bool = False
    #: Coalesce and group-commit state writes (``None``: every write goes out on its own).
    BATCH_WRITES: BatchWrites | None = None
    #: How long cleanup keeps the task results each rule matches; the first match decides.
    RETENTION: tuple[retention.Rule, ...] = ()
    #: How long cleanup keeps group results (``None``: forever); Celery's ``result_expires``
    #: by default.
    GROUP_RETENTION: timedelta | Literal["result_expires"] | None = "result_expires"


#: What each key accepts, as (types, description) for the error messages.
_EXPECTED: dict[str, tuple[tuple[type, ...], str]] = {
    "ALLOW_EDITS": ((bool,), "True or False"),
    "ADMIN_SEARCH_ARGS": ((bool,), "True or False"),
    "STUCK_AFTER": ((timedelta, int, float), "a timedelta or a number of seconds > 0"),
    "METRICS_TOKEN": ((str, type(None)), "a string of at least 16 characters, or None"),
    "DISABLED_DRIVERS": ((list, tuple), "a list of vendor names such as ['mysql']"),
    "MAX_RETRIES": ((int,), "a whole number >= 0"),
    "RETRY_BACKOFF": ((int, float), "a number of seconds > 0"),
    "RETRY_BACKOFF_MAX": ((int, float), "a number of seconds > 0"),
    "CLEANUP_BATCH_SIZE": ((int,), "a whole number > 0"),
    "TRACK_PENDING": ((bool,), "True or False"),
    "NOTIFY": ((bool,), "True or False"),
    "BATCH_WRITES": (
        (dict, bool, type(None)),
        "None, True or a dict such as {'max_delay_ms': 100, 'max_rows': 500}",
    ),
    "RETENTION": ((list, tuple), "a list of rules such as [{'status': 'FAILURE', 'keep': 86400}]"),
    "GROUP_RETENTION": (
        (timedelta, int, float, type(None)),
        "a timedelta, a number of seconds >= 0, or None (keep forever)",
    ),
}
_BATCH_KEYS: dict[str, tuple[tuple[type, ...], str, float]] = {
    "max_delay_ms": ((int, float), "a number of milliseconds > 0 and <= 60000", 60_000),
    "max_rows": ((int,), "a whole number > 0 and <= 100000", 100_000),
}
_MINIMUM = {"MAX_RETRIES": 0, "CLEANUP_BATCH_SIZE": 1}
_POSITIVE = {"RETRY_BACKOFF", "RETRY_BACKOFF_MAX"}


def raw_settings() -> dict[str, Any]:
    """Return the user's ``DJANGO_CELERY_RESULTS`` dict (empty when unset)."""
    value = getattr(settings, SETTING_NAME, None)
    return value if isinstance(value, dict) else {}


def validate(raw: Any) -> list[str]:
    """Return one message per problem in a ``DJANGO_CELERY_RESULTS`` value."""
    if raw is None:
        return []
    if not isinstance(raw, dict):
        return [f"{SETTING_NAME} must be a dict, not {type(raw).__name__}."]
    problems = []
    for key, value in raw.items():
        if key not in _EXPECTED:
            known = ", ".join(sorted(_EXPECTED))
            problems.append(f"{SETTING_NAME}[{key!r}] is not a known key. Known keys: {known}.")
            continue
        types, description = _EXPECTED[key]
        wrong_type = not isinstance(value, types) or (
            bool not in types and isinstance(value, bool)
        )
        if wrong_type:
            problems.append(
                f"{SETTING_NAME}[{key!r}] must be {description}, "
                f"not {value!r} ({type(value).__name__})."
            )
        elif (
            (key in _MINIMUM and value < _MINIMUM[key])
            or (key in _POSITIVE and value <= 0)
            or (key == "DISABLED_DRIVERS" and not all(isinstance(v, str) for v in value))
        ):
            problems.append(f"{SETTING_NAME}[{key!r}] must be {description}, not {value!r}.")
        elif key == "BATCH_WRITES" and isinstance(value, dict):
            problems.extend(_batch_problems(value))
        elif key == "RETENTION":
            problems.extend(retention.problems(value, f"{SETTING_NAME}['RETENTION']"))
        elif key == "STUCK_AFTER" and value <= type(value)(0):
            problems.append(f"{SETTING_NAME}[{key!r}] must be {description}, not {value!r}.")
        elif key == "METRICS_TOKEN" and value is not None and len(value) < 16:
            problems.append(
                f"{SETTING_NAME}[{key!r}] must be {description}: a short token is guessable."
            )
        elif key == "GROUP_RETENTION" and value is not None and value < type(value)(0):
            problems.append(f"{SETTING_NAME}[{key!r}] must be {description}, not {value!r}.")
    return problems


def _batch_problems(batch: dict[str, Any]) -> list[str]:
    """Return one message per problem in a ``BATCH_WRITES`` dict."""
    problems = []
    for key, value in batch.items():
        if key not in _BATCH_KEYS:
            known = ", ".join(sorted(_BATCH_KEYS))
            problems.append(
                f"{SETTING_NAME}['BATCH_WRITES'][{key!r}] is not a known key. Known keys: {known}."
            )
            continue
        types, description, maximum = _BATCH_KEYS[key]
        number = isinstance(value, types) and not isinstance(value, bool)
        if not number or not 0 < float(value) <= maximum:
            problems.append(
                f"{SETTING_NAME}['BATCH_WRITES'][{key!r}] must be {description}, not {value!r}."
            )
    return problems


def _batch_writes(value: dict[str, Any] | bool | None) -> BatchWrites | None:
    """Turn a valid ``BATCH_WRITES`` value into its settings (None: batching off)."""
    if value is None or value is False:
        return None
    return BatchWrites(**value) if isinstance(value, dict) else BatchWrites()


@functools.cache
def app_settings() -> AppSettings:
    """Return the validated settings; invalid or unknown keys keep their defaults.

    The system check reports them (``manage.py check``), so a typo never stops a worker.
    Read once (every database operation asks), and again when tests change the setting.
    """
    raw = raw_settings()
    valid: dict[str, Any] = {}
    for field in fields(AppSettings):
        if field.name in raw and not validate({field.name: raw[field.name]}):
            value = raw[field.name]
            if field.name == "DISABLED_DRIVERS":
                value = tuple(value)
            elif field.name == "BATCH_WRITES":
                value = _batch_writes(value)
            elif field.name == "RETENTION":
                value = retention.parse(value)
            elif field.name == "GROUP_RETENTION":
                value = retention.as_keep(value)
            elif field.name == "STUCK_AFTER" and not isinstance(value, timedelta):
                value = timedelta(seconds=value)
            valid[field.name] = value
    return AppSettings(**valid)


def _forget_settings(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTING_NAME:
        app_settings.cache_clear()


setting_changed.connect(_forget_settings)
