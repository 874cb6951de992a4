"""Small helpers: the current time, spans such as ``24h``, the ``django.tasks`` header."""

# This module must not use translation: that causes a recursive loader import.
import re
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

#: The message header naming the ``django.tasks`` task a Celery message runs (its import
#: path). Its rows are stored under that name, with their real args and kwargs.
DJANGO_TASK_HEADER = "django_task"

# see Issue celery/django-celery#222
now_localtime = getattr(timezone, "template_localtime", timezone.localtime)


def now() -> datetime:
    """Return the current date and time."""
    if getattr(settings, "USE_TZ", False):
        return now_localtime(timezone.now())
    return timezone.now()


#: The longest span a setting or an option may name (``keep``, ``GROUP_RETENTION``,
#: ``STUCK_AFTER``, ``--since``, ``--older-than``, a metrics window): "now minus it" must
#: stay a date every database stores.
MAX_SPAN = timedelta(days=36_500)

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_span(value: str) -> timedelta | None:
    """Read a span such as ``90s``, ``15m``, ``24h``, ``30d`` or ``2w``.

    None if it is not one, or is longer than :data:`MAX_SPAN`.
    """
    match = re.fullmatch(r"(\d{1,12}(?:\.\d{1,9})?)([smhdw])", value.strip())
    if match is None:
        return None
    amount, unit = match.groups()
    try:
        span = timedelta(**{_UNITS[unit]: float(amount)})
    except OverflowError:
        return None
    return span if span <= MAX_SPAN else None
