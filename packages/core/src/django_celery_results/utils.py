"""Utilities."""

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


_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_span(value: str) -> timedelta | None:
    """Read a span such as ``90s``, ``15m``, ``24h``, ``30d`` or ``2w``; None if it is not one."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smhdw])", value.strip())
    if match is None:
        return None
    amount, unit = match.groups()
    return timedelta(**{_UNITS[unit]: float(amount)})
