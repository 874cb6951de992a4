"""The ``DJANGO_CELERY_RESULTS`` settings dict: defaults, types and validation."""

from __future__ import annotations

import difflib
import functools
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import timedelta
from typing import Any, Literal

from celery.states import ALL_STATES
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from . import retention
from .utils import MAX_SPAN

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
    #: The project's own task states (``update_state(state="PROGRESS")``), known to
    #: ``RETENTION`` besides Celery's.
    CUSTOM_STATES: tuple[str, ...] = ()
    #: How long the rolled-up history keeps its buckets of an hour or longer.
    HISTORY_RETENTION: timedelta = timedelta(days=90)
    #: Seconds between two catch-ups of the history in each worker (0: none; reads and
    #: cleanup still catch up).
    HISTORY_INTERVAL: float = 10.0
    #: Seconds between two heartbeats of each worker in the worker registry (0: no registry).
    WORKER_HEARTBEAT: float = 15.0
    #: How long a registered worker's heartbeats may stop before the lifeline settles its
    #: running tasks as lost (0: the lifeline is off).
    LIFELINE_GRACE: timedelta = timedelta(seconds=60)
    #: How long the lifeline waits for the broker to redeliver a lost worker's
    #: ``acks_late`` task (None: from the broker; see ``docs/workers.md``).
    LIFELINE_REDELIVERY_GRACE: timedelta | None = None
    #: How old a PENDING row is before one that no live worker consumes is flagged.
    UNCONSUMED_AFTER: timedelta = timedelta(minutes=5)
    #: Settle flagged PENDING rows as FAILURE (off: they are only flagged).
    SETTLE_UNCONSUMED: bool = False
    #: Distinct values each metrics label keeps; later ones count as "other".
    METRICS_MAX_LABEL_VALUES: int = 100
    #: Who may read results through the JSON views: ``None`` (anyone, as upstream), a
    #: permission (``"django_celery_results.view_taskresult"``) or a callable(request).
    RESULT_VIEWS_PERMISSION: str | Callable[[Any], bool] | None = None
    #: Store each call's real args and kwargs (encoded with the task's serializer) so the
    #: admin can retry it: ``True`` for every task, or a list of task names.
    STORE_CALLS: bool | tuple[str, ...] = False
    #: Rows per second the admin's background jobs act on (retry, revoke, terminate, delete).
    ADMIN_ACTION_RATE: float = 50.0
    #: Most rows one admin job may act on (its rows are fixed in one statement).
    ADMIN_ACTION_MAX_ROWS: int = 1_000_000


_SPAN = "a timedelta or a number of seconds"
_SPAN_RANGE = f"up to {MAX_SPAN.days:,} days (100 years)"

#: What each key accepts, as (types, description) for the error messages.
_EXPECTED: dict[str, tuple[tuple[type, ...], str]] = {
    "ALLOW_EDITS": ((bool,), "True or False"),
    "ADMIN_SEARCH_ARGS": ((bool,), "True or False"),
    "STUCK_AFTER": ((timedelta, int, float), f"{_SPAN} > 0 and {_SPAN_RANGE}"),
    "METRICS_TOKEN": ((str, type(None)), "a string of at least 16 characters, or None"),
    "DISABLED_DRIVERS": ((list, tuple), "a list of vendor names such as ['mysql']"),
    "MAX_RETRIES": ((int,), "a whole number from 0 to 100"),
    "RETRY_BACKOFF": ((int, float), "a number of seconds > 0 and <= 60"),
    "RETRY_BACKOFF_MAX": ((int, float), "a number of seconds > 0 and <= 3600"),
    "CLEANUP_BATCH_SIZE": ((int,), "a whole number from 1 to 1000000"),
    "TRACK_PENDING": ((bool,), "True or False"),
    "NOTIFY": ((bool,), "True or False"),
    "BATCH_WRITES": (
        (dict, bool, type(None)),
        "None, True or a dict such as {'max_delay_ms': 100, 'max_rows': 500}",
    ),
    "RETENTION": ((list, tuple), "a list of rules such as [{'status': 'FAILURE', 'keep': 86400}]"),
    "GROUP_RETENTION": (
        (timedelta, int, float, type(None)),
        f"{_SPAN} >= 0 and {_SPAN_RANGE}, None (keep forever), or 'result_expires'",
    ),
    "CUSTOM_STATES": (
        (list, tuple),
        "a list of your tasks' own state names such as ['PROGRESS'], each at most 50 characters",
    ),
    "HISTORY_RETENTION": (
        (timedelta, int, float),
        f"{_SPAN} of at least 1 day and {_SPAN_RANGE}",
    ),
    "HISTORY_INTERVAL": (
        (int, float),
        "a number of seconds >= 0 and <= 3600 (0: no catch-up in workers)",
    ),
    "WORKER_HEARTBEAT": (
        (int, float),
        "a number of seconds >= 0 and <= 3600 (0: workers do not register)",
    ),
    "LIFELINE_GRACE": (
        (timedelta, int, float),
        f"{_SPAN} of at least two heartbeat intervals and at most 7 days (0: no lifeline)",
    ),
    "LIFELINE_REDELIVERY_GRACE": (
        (timedelta, int, float, type(None)),
        f"{_SPAN} >= 0 and at most 7 days, or None (from the broker)",
    ),
    "UNCONSUMED_AFTER": ((timedelta, int, float), f"{_SPAN} > 0 and {_SPAN_RANGE}"),
    "SETTLE_UNCONSUMED": ((bool,), "True or False"),
    "METRICS_MAX_LABEL_VALUES": ((int,), "a whole number from 1 to 10000"),
    "RESULT_VIEWS_PERMISSION": (
        (str, type(None), Callable),  # type: ignore[dict-item]
        "None (anyone may read), a permission such as 'django_celery_results.view_taskresult', "
        "or a function that takes the request and returns True to allow it",
    ),
    "STORE_CALLS": ((bool, list, tuple), "True, False or a list of task names"),
    "ADMIN_ACTION_RATE": ((int, float), "a number of rows per second > 0 and <= 100000"),
    "ADMIN_ACTION_MAX_ROWS": ((int,), "a whole number from 1 to 100000000"),
}
#: Numeric keys: (smallest, largest, whether the smallest itself is refused).
_RANGES: dict[str, tuple[float, float, bool]] = {
    "MAX_RETRIES": (0, 100, False),
    "RETRY_BACKOFF": (0, 60, True),
    "RETRY_BACKOFF_MAX": (0, 3600, True),
    "CLEANUP_BATCH_SIZE": (1, 1_000_000, False),
    "STUCK_AFTER": (0, MAX_SPAN.total_seconds(), True),
    "GROUP_RETENTION": (0, MAX_SPAN.total_seconds(), False),
    "HISTORY_RETENTION": (86_400, MAX_SPAN.total_seconds(), False),
    "HISTORY_INTERVAL": (0, 3600, False),
    "WORKER_HEARTBEAT": (0, 3600, False),
    "LIFELINE_GRACE": (0, 7 * 86_400, False),
    "LIFELINE_REDELIVERY_GRACE": (0, 7 * 86_400, False),
    "UNCONSUMED_AFTER": (0, MAX_SPAN.total_seconds(), True),
    "METRICS_MAX_LABEL_VALUES": (1, 10_000, False),
    "ADMIN_ACTION_RATE": (0, 100_000, True),
    "ADMIN_ACTION_MAX_ROWS": (1, 100_000_000, False),
}
_BATCH_KEYS: dict[str, tuple[tuple[type, ...], str, float]] = {
    "max_delay_ms": ((int, float), "a number of milliseconds > 0 and <= 60000", 60_000),
    "max_rows": ((int,), "a whole number > 0 and <= 100000", 100_000),
}
#: The keys that decide what cleanup deletes: while one is invalid, cleanup deletes nothing.
DELETION_KEYS = ("RETENTION", "GROUP_RETENTION", "CUSTOM_STATES", "HISTORY_RETENTION")
#: The keys that decide what the lifeline settles: while one is invalid, it settles nothing.
LIFELINE_KEYS = (
    "LIFELINE_GRACE",
    "LIFELINE_REDELIVERY_GRACE",
    "UNCONSUMED_AFTER",
    "SETTLE_UNCONSUMED",
    "WORKER_HEARTBEAT",
)
#: The longest state name the ``status`` column holds.
STATE_MAX_LENGTH = retention.STATE_MAX_LENGTH

logger = logging.getLogger(__name__)


def raw_settings() -> dict[str, Any]:
    """Return the user's ``DJANGO_CELERY_RESULTS`` dict (empty when unset)."""
    value = getattr(settings, SETTING_NAME, None)
    return value if isinstance(value, dict) else {}


def seconds_of(value: Any) -> float | None:
    """Return a span (a ``timedelta`` or a number, not a bool) in seconds; None for others."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:  # an int too large for a float
            return math.inf
    return None


def in_range(value: Any, key: str) -> bool:
    """Return True when a number or span is finite and within ``key``'s range."""
    seconds = seconds_of(value)
    if seconds is None or not math.isfinite(seconds):
        return False
    low, high, low_refused = _RANGES[key]
    return (seconds > low if low_refused else seconds >= low) and seconds <= high


def validate(raw: Any) -> list[str]:
    """Return one message per problem in a ``DJANGO_CELERY_RESULTS`` value.

    Never raises, whatever the value: a setting read at import time must not stop a
    process from starting, only be reported.
    """
    if raw is None:
        return []
    if not isinstance(raw, dict):
        return [f"{SETTING_NAME} must be a dict, not {type(raw).__name__}."]
    problems = []
    for key, value in raw.items():
        try:
            problems.extend(_key_problems(key, value, raw))
        except Exception as exc:  # a value whose comparisons raise: refused, never a crash
            problems.append(
                f"{SETTING_NAME}[{retention.safe_repr(key)}] could not be read "
                f"({type(exc).__name__})."
            )
    return problems


def _key_problems(key: Any, value: Any, raw: dict[str, Any]) -> list[str]:
    if key not in _EXPECTED:
        known = ", ".join(sorted(_EXPECTED))
        name = key.upper() if isinstance(key, str) else ""
        near = difflib.get_close_matches(name, _EXPECTED, n=1)
        hint = f" Did you mean {near[0]!r}?" if near else ""
        shown = retention.safe_repr(key)
        return [f"{SETTING_NAME}[{shown}] is not a known key.{hint} Known keys: {known}."]
    types, description = _EXPECTED[key]
    if key == "GROUP_RETENTION" and value == "result_expires":  # the default, written out
        return []
    wrong_type = not isinstance(value, types) or (bool not in types and isinstance(value, bool))
    if wrong_type:
        return [
            f"{SETTING_NAME}[{key!r}] must be {description}, "
            f"not {retention.safe_repr(value)} ({type(value).__name__})."
        ]
    bad = f"{SETTING_NAME}[{key!r}] must be {description}, not {retention.safe_repr(value)}."
    if key in _RANGES and value is not None and not in_range(value, key):
        return [bad]
    listed = key in ("DISABLED_DRIVERS", "STORE_CALLS") and isinstance(value, list | tuple)
    if listed and not all(isinstance(v, str) and v for v in value):
        return [bad]
    if key == "CUSTOM_STATES" and not all(
        isinstance(v, str) and 0 < len(v) <= STATE_MAX_LENGTH for v in value
    ):
        return [bad]
    if key == "BATCH_WRITES" and isinstance(value, dict):
        return _batch_problems(value)
    if key == "RETENTION":
        return retention.problems(
            value, f"{SETTING_NAME}['RETENTION']", known_states(raw.get("CUSTOM_STATES"))
        )
    if key == "RESULT_VIEWS_PERMISSION" and isinstance(value, str) and value.count(".") != 1:
        return [bad]
    if key == "METRICS_TOKEN" and value is not None and len(value) < 16:
        return [f"{SETTING_NAME}[{key!r}] must be {description}: a short token is guessable."]
    return []


def known_states(custom: Any = None) -> frozenset[str]:
    """Celery's states and the project's own (``CUSTOM_STATES``, when it is a valid list)."""
    declared = (
        [name for name in custom if isinstance(name, str)]
        if isinstance(custom, list | tuple)
        else []
    )
    return frozenset(ALL_STATES) | frozenset(declared)


def warnings(raw: Any) -> list[str]:
    """Return what is suspicious but allowed: ``RETENTION`` states nothing declares."""
    if not isinstance(raw, dict) or not isinstance(raw.get("RETENTION"), list | tuple):
        return []
    try:
        return retention.unknown_states(
            raw["RETENTION"],
            f"{SETTING_NAME}['RETENTION']",
            known_states(raw.get("CUSTOM_STATES")),
        )
    except Exception:  # a value whose reading raises: validate() reports it as an error
        return []


def cleanup_problems() -> list[str]:
    """Return why cleanup must delete nothing now: the deletion settings' problems.

    ``RETENTION``, ``GROUP_RETENTION`` and ``CUSTOM_STATES`` decide what is deleted; so
    does a misspelling of one of them (its rules would be missing), and a setting that
    is not a dict at all.
    """
    value = getattr(settings, SETTING_NAME, None)
    if value is None:
        return []
    if not isinstance(value, dict):
        return validate(value)
    problems = validate({key: value[key] for key in DELETION_KEYS if key in value})
    for key in value:
        if key in _EXPECTED:
            continue
        name = key.upper() if isinstance(key, str) else ""
        near = difflib.get_close_matches(name, DELETION_KEYS, n=1, cutoff=0.6)
        if near or "RETENTION" in name or not isinstance(key, str):
            problems.append(
                f"{SETTING_NAME}[{retention.safe_repr(key)}] is not a known key; "
                f"did you mean {(near or ['RETENTION'])[0]!r}?"
            )
    return problems


def lifeline_problems() -> list[str]:
    """Return why the lifeline must settle nothing now: its settings' problems.

    Its own keys, ``WORKER_HEARTBEAT`` (a grace shorter than two heartbeat intervals
    would declare live workers lost), and a misspelling of one of them.
    """
    raw = raw_settings()
    value = getattr(settings, SETTING_NAME, None)
    if value is not None and not isinstance(value, dict):
        return validate(value)
    problems = validate({key: raw[key] for key in LIFELINE_KEYS if key in raw})
    for key in raw:
        name = key.upper() if isinstance(key, str) else ""
        if key in _EXPECTED or not name:
            continue
        near = difflib.get_close_matches(name, LIFELINE_KEYS[:4], n=1, cutoff=0.6)
        if near or "LIFELINE" in name:
            problems.append(
                f"{SETTING_NAME}[{retention.safe_repr(key)}] is not a known key; "
                f"did you mean {(near or ['LIFELINE_GRACE'])[0]!r}?"
            )
    if not problems:
        grace = seconds_of(raw.get("LIFELINE_GRACE", AppSettings.LIFELINE_GRACE)) or 0.0
        beat = seconds_of(raw.get("WORKER_HEARTBEAT", AppSettings.WORKER_HEARTBEAT)) or 0.0
        if 0 < grace < 2 * beat:
            problems.append(
                f"{SETTING_NAME}['LIFELINE_GRACE'] is {grace:g} s, shorter than two heartbeat "
                f"intervals (WORKER_HEARTBEAT is {beat:g} s): a live worker would be "
                f"declared lost. Make it at least {2 * beat:g} s."
            )
    return problems


class CleanupRefused(ImproperlyConfigured):
    """A setting that decides what cleanup deletes is invalid, so nothing was deleted."""


def expires_problem(expires: Any) -> str | None:
    """What is wrong with Celery's ``result_expires`` as a cleanup's span, or None.

    ``None`` and 0 keep results; a negative span would put the cutoff in the future and
    delete every row, and one past 100 years (or not finite) cannot be subtracted.
    """
    if expires is None or (expires == 0 and not isinstance(expires, bool)):
        return None
    if seconds_of(expires) is None or not retention.is_keep(expires):
        return (
            f"Celery's result_expires is {retention.safe_repr(expires)}: it must be a "
            f"timedelta or a number of seconds >= 0 and up to {MAX_SPAN.days:,} days, "
            "or None / 0 to keep results."
        )
    return None


#: The logger cleanup's refusals go to (the worker's log, where beat's cleanup runs).
cleanup_logger = logging.getLogger("django_celery_results.cleanup")


def refuse_if_misconfigured(result_expires: Any = None, *, rules: bool = True) -> None:
    """Refuse to clean up while a setting that decides what is deleted is invalid.

    ``RETENTION``, ``GROUP_RETENTION``, ``CUSTOM_STATES`` (when ``rules``) and Celery's
    ``result_expires``: a rule that cannot be read must never let its rows expire. Logs
    an ERROR line per problem, then raises :class:`CleanupRefused`.
    """
    problems = cleanup_problems() if rules else []
    expires = expires_problem(result_expires)
    if expires is not None:
        problems.append(expires)
    if not problems:
        return
    for problem in problems:
        cleanup_logger.error(
            "Cleanup deleted nothing: %s Fix it (docs/settings.md); cleanup stays off until "
            "then (manage.py check lists every problem).",
            problem,
        )
    raise CleanupRefused(
        "Cleanup deleted nothing: a setting that decides what is deleted is invalid:\n  "
        + "\n  ".join(problems)
    )


def result_views_refused() -> bool:
    """Whether ``RESULT_VIEWS_PERMISSION`` is set but invalid: the views then refuse all.

    A mistake in who may read results fails closed, never open to anyone.
    """
    raw = raw_settings()
    return "RESULT_VIEWS_PERMISSION" in raw and bool(
        validate({"RESULT_VIEWS_PERMISSION": raw["RESULT_VIEWS_PERMISSION"]})
    )


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
        amount = seconds_of(value) if number else None
        if amount is None or not (math.isfinite(amount) and 0 < amount <= maximum):
            problems.append(
                f"{SETTING_NAME}['BATCH_WRITES'][{key!r}] must be {description}, not {value!r}."
            )
    return problems


def _batch_writes(value: dict[str, Any] | bool | None) -> BatchWrites | None:
    """Turn a valid ``BATCH_WRITES`` value into its settings (None: batching off)."""
    if value is None or value is False:
        return None
    return BatchWrites(**value) if isinstance(value, dict) else BatchWrites()


def _with_context(name: str, raw: dict[str, Any]) -> dict[str, Any]:
    """The keys validated together with ``name``: ``RETENTION`` needs ``CUSTOM_STATES``."""
    if name == "RETENTION" and "CUSTOM_STATES" in raw:
        return {name: raw[name], "CUSTOM_STATES": raw["CUSTOM_STATES"]}
    return {name: raw[name]}


def _converted(name: str, value: Any, raw: dict[str, Any]) -> Any:
    """Turn a valid value into the type :class:`AppSettings` holds."""
    if name in ("DISABLED_DRIVERS", "CUSTOM_STATES") or (
        name == "STORE_CALLS" and not isinstance(value, bool)
    ):
        return tuple(value)
    if name == "BATCH_WRITES":
        return _batch_writes(value)
    if name == "RETENTION":
        return retention.parse(value)
    if name == "GROUP_RETENTION":
        return value if value == "result_expires" else retention.as_keep(value)
    spans = ("STUCK_AFTER", "HISTORY_RETENTION", "LIFELINE_GRACE", "UNCONSUMED_AFTER")
    if name in (*spans, "LIFELINE_REDELIVERY_GRACE") and isinstance(value, int | float):
        return timedelta(seconds=value)
    return value


@functools.cache
def app_settings() -> AppSettings:
    """Return the validated settings; invalid or unknown keys keep their defaults.

    Never raises. The system check reports every problem (``manage.py check``, and the
    worker's log at start); each key that falls back to its default is also logged here,
    once per process. A deletion setting that is invalid keeps its default too, but
    cleanup then refuses to run at all (:func:`cleanup_problems`).
    Read once (every database operation asks), and again when tests change the setting.
    """
    raw = raw_settings()
    valid: dict[str, Any] = {}
    for field in fields(AppSettings):
        if field.name not in raw:
            continue
        problems = validate(_with_context(field.name, raw))
        if not problems:
            try:
                valid[field.name] = _converted(field.name, raw[field.name], raw)
                continue
            except Exception as exc:  # validation let through what cannot be used
                problems = [f"{SETTING_NAME}[{field.name!r}] could not be used ({exc!r})."]
        if field.name == "RESULT_VIEWS_PERMISSION":
            logger.error(
                "%s The JSON views refuse every request until it is fixed (docs/settings.md).",
                " ".join(problems),
            )
        elif field.name not in DELETION_KEYS + LIFELINE_KEYS:
            logger.warning(
                "%s Using the default, %r, until it is fixed (docs/settings.md).",
                " ".join(problems),
                field.default,
            )
    return AppSettings(**valid)


def _forget_settings(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTING_NAME:
        app_settings.cache_clear()


setting_changed.connect(_forget_settings)
