"""How the admin shows stored values: short ids, seconds, durations, states, decoded JSON."""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from celery import states
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext, gettext_lazy

from ..operations.calls import META_KEY

logger = logging.getLogger(__name__)
Shown = TypeVar("Shown")

#: Characters of a task id shown in the list; the whole id is in the link's title.
SHORT_ID = 8
#: Longest decoded text shown on a detail page, in characters; the rest is cut.
MAX_SHOWN = 100_000
#: Where a long name may wrap.
WBR = SafeString("<wbr>")
#: The CSS class of each state's badge (``change_list.html`` colours them).
STATE_CLASSES = {
    states.SUCCESS: "success",
    states.FAILURE: "failure",
    states.REVOKED: "failure",
    states.RETRY: "retry",
    states.STARTED: "running",
    states.RECEIVED: "running",
    states.PENDING: "pending",
}


def short_id(task_id: str) -> SafeString:
    """The first characters of ``task_id``, the whole id on hover."""
    shown = task_id if len(task_id) <= SHORT_ID + 1 else f"{task_id[:SHORT_ID]}…"
    return format_html('<span class="dcr-id" title="{}">{}</span>', task_id, shown)


def breakable(name: str | None, second: str | None = None) -> SafeString:
    """A dotted name (``proj.tasks.add``, ``celery@host``) that may wrap after ``.`` and ``@``.

    ``second``, when given, follows on a line of its own in small print (a periodic task).
    """
    if name:
        parts = re.split(r"(?<=[.@])", name)
        shown = format_html_join(WBR, "{}", ((part,) for part in parts))
    else:
        shown = format_html("{}", "-")
    if second:
        return format_html('{}<br><small class="dcr-second">{}</small>', shown, second)
    return shown


def exception_name(kind: str | None) -> SafeString:
    """An exception type by its class name, the whole ``module.Name`` on hover."""
    if not kind:
        return format_html("{}", "")
    return format_html('<span title="{}">{}</span>', kind, kind.rsplit(".", 1)[-1])


def local(value: datetime) -> datetime:
    """``value`` in the current time zone; as stored where that zone is past the calendar.

    A ``date_done`` of 9999-12-31 23:00 UTC has no local time east of UTC.
    """
    if not timezone.is_aware(value):
        return value
    try:
        return timezone.localtime(value)
    except OverflowError:
        return value


def when_done(value: datetime | None) -> SafeString:
    """The time of day for today's rows, the date too for older ones; all of it on hover."""
    if value is None:
        return format_html("{}", "-")
    local_value = local(value)
    today = timezone.localdate() if timezone.is_aware(value) else datetime.now().date()
    shown = local_value.strftime(
        "%H:%M:%S" if local_value.date() == today else "%Y-%m-%d %H:%M:%S"
    )
    return format_html('<span title="{}">{}</span>', with_milliseconds(value), shown)


def to_the_second(value: datetime | None) -> str:
    """``value`` in the current time zone, to the second (task timing lives in seconds)."""
    if value is None:
        return "-"
    value = local(value)
    return with_zone(value.strftime("%Y-%m-%d %H:%M:%S"), value)


def with_milliseconds(value: datetime | None) -> str:
    """``value`` in the current time zone, to the millisecond (the detail page's timeline)."""
    if value is None:
        return "-"
    value = local(value)
    shown = value.strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond // 1000:03d}"
    return with_zone(shown, value)


def with_zone(shown: str, value: datetime) -> str:
    """``shown`` followed by ``value``'s time zone (``UTC``, ``CET``), when it has one."""
    zone = value.tzname() if timezone.is_aware(value) else None
    return f"{shown} {zone}" if zone else shown


def duration(span: timedelta | float | None) -> str:
    """A duration for people: ``967 ms``, ``1.2 s``, ``3 min 4 s``, ``2 h 5 min``, ``3 d 4 h``."""
    if span is None:
        return "-"
    seconds = span.total_seconds() if isinstance(span, timedelta) else float(span)
    if seconds < 0:
        return "-" + duration(-seconds)
    if seconds < 1:
        return gettext("%(n)d ms") % {"n": round(seconds * 1000)}
    if seconds < 60:
        return gettext("%(n)s s") % {"n": f"{seconds:.1f}".removesuffix(".0")}
    minutes, second = divmod(round(seconds), 60)
    if minutes < 60:
        if not second:
            return gettext("%(m)d min") % {"m": minutes}
        return gettext("%(m)d min %(s)d s") % {"m": minutes, "s": second}
    hours, minute = divmod(minutes, 60)
    if hours < 24:
        if not minute:
            return gettext("%(h)d h") % {"h": hours}
        return gettext("%(h)d h %(m)d min") % {"h": hours, "m": minute}
    days, hour = divmod(hours, 24)
    if not hour:
        return gettext("%(d)d d") % {"d": days}
    return gettext("%(d)d d %(h)d h") % {"d": days, "h": hour}


#: The CSS class of each worker state's badge (``workers.status``).
WORKER_STATE_CLASSES = {"live": "success", "silent": "failure", "stopped": "pending"}


#: A worker state's words (task states are Celery's names, shown as they are).
WORKER_STATE_LABELS = {
    "live": gettext_lazy("live"),
    "silent": gettext_lazy("silent"),
    "stopped": gettext_lazy("stopped"),
}


def state_badge(state: str, classes: dict[str, str] = STATE_CLASSES) -> SafeString:
    """``state`` (a task's, or with ``WORKER_STATE_CLASSES`` a worker's) as a coloured badge."""
    css = classes.get(state, "other")
    label = WORKER_STATE_LABELS.get(state, state) if classes is WORKER_STATE_CLASSES else state
    return format_html(
        '<span data-state="{}" class="dcr-state dcr-state-{}">{}</span>', state, css, label
    )


def decoded(text: str | None, content_type: str | None = "application/json") -> SafeString:
    """A stored value as preformatted, indented JSON; binary payloads only described.

    Values of another serializer (pickle, msgpack, YAML) are never decoded here: a web
    process must not unpickle what a worker wrote. Task args and kwargs are JSON strings
    holding Celery's ``repr()`` of them; those show as the text they hold.
    """
    if text is None:
        return format_html("{}", "-")
    if content_type not in (None, "application/json"):
        return format_html(
            '<span class="dcr-binary">{}</span>',
            gettext("%(type)s, %(size)d characters, not decoded")
            % {"type": content_type, "size": len(text)},
        )
    try:
        value: Any = json.loads(text)
        if isinstance(value, str):
            return preformatted(value)
        return preformatted(json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True))
    except (ValueError, TypeError, RecursionError):  # not JSON, or nested too deep to show
        return preformatted(text)


def meta_without_call(text: str | None, content_type: str | None) -> str | None:
    """A row's meta with its stored call (``STORE_CALLS``) replaced by a note of its size.

    The call holds the task's real arguments, which Celery's display repr may mask on
    purpose: viewing a result does not show them.
    """
    if not text or content_type not in (None, "application/json") or META_KEY not in text:
        return text
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return text
    if not isinstance(value, dict) or META_KEY not in value:
        return text
    size = len(json.dumps(value[META_KEY]))
    value[META_KEY] = gettext("(stored for Retry, %(size)d characters, not shown)") % {
        "size": size
    }
    return json.dumps(value)


def preformatted(text: str | None) -> SafeString:
    """``text`` escaped in a ``<pre>``, cut at :data:`MAX_SHOWN` characters."""
    if not text:
        return format_html("{}", "-")
    if len(text) > MAX_SHOWN:
        cut = gettext("… (%(n)d more characters)") % {"n": len(text) - MAX_SHOWN}
        text = text[:MAX_SHOWN] + "\n" + cut
    return format_html('<pre class="dcr-pre">{}</pre>', text)


def timeline(row: Any) -> SafeString:
    """A task row's created → started → done, to the millisecond, and the spans between."""
    steps = [
        (gettext("created"), row.date_created),
        (gettext("started"), row.date_started),
        (gettext("done"), row.date_done),
    ]
    spans = [
        (gettext("waiting"), row.waiting_time),
        (gettext("processing"), row.processing_time),
        (gettext("total"), row.total_time),
    ]
    return format_html(
        '<ol class="dcr-timeline">{}</ol><p class="dcr-spans">{}</p>',
        format_html_join(
            "", "<li>{}: <time>{}</time></li>",
            ((name, with_milliseconds(when)) for name, when in steps),
        ),
        format_html_join(" · ", "{} <b>{}</b>", ((name, duration(span)) for name, span in spans)),
    )  # fmt: skip


def unreadable(error: BaseException) -> SafeString:
    """What a page shows for a value it cannot render: that it is unreadable, and why."""
    return format_html(
        '<span class="dcr-unreadable">{}</span>',
        gettext("unreadable (%(error)s)") % {"error": type(error).__name__},
    )


def guarded(
    method: Callable[[Any, Any], Shown],
) -> Callable[[Any, Any], Shown | SafeString]:
    """Show a column a row cannot render as :func:`unreadable`, and log why.

    One bad row never takes the list or its detail page down; the log line names the
    row's task id.
    """

    @functools.wraps(method)
    def shown(model_admin: Any, obj: Any) -> Shown | SafeString:
        try:
            return method(model_admin, obj)
        except Exception as exc:
            logger.warning(
                "Result %s: its %s can't be shown (%s: %s)",
                getattr(obj, "task_id", None) or getattr(obj, "group_id", "?"),
                method.__name__,
                type(exc).__name__,
                exc,
            )
            return unreadable(exc)

    return shown
