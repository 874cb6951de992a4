"""List filters that never scan the table: fixed states, and choices from recent rows.

Django's default filter on a text column (``AllValuesFieldListFilter``) runs
``SELECT DISTINCT`` over the whole table on every page view. The name filters here take
their choices from the :data:`RECENT_ROWS` most recently done rows, found through the
``date_done`` index; a value older than that is still reachable by search, or by
keeping it in the query string (the chosen value is always offered).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from celery import states
from django.contrib import admin
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from django.http import HttpRequest
    from django.utils.functional import _StrOrPromise as StrOrPromise

#: How many of the newest rows the name filters take their choices from.
RECENT_ROWS = 10_000
#: Most choices a name filter offers.
MAX_CHOICES = 50


class StatusFilter(admin.SimpleListFilter):
    """Celery's states, a fixed list: no query to build the choices."""

    title = _("state")
    parameter_name = "status__exact"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        """Every Celery state."""
        return [(state, state) for state in sorted(states.ALL_STATES)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        """Rows in the chosen state (the ``status`` index)."""
        value = self.value()
        return queryset.filter(status=value) if value else queryset


class RecentValuesFilter(admin.SimpleListFilter):
    """Choices are the values of :attr:`field` among the newest :data:`RECENT_ROWS` rows."""

    #: The column filtered on (set by each subclass).
    field = ""

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        """The distinct values of the recent window, plus the chosen one."""
        model = model_admin.model
        manager = model._default_manager.db_manager(model_admin.get_queryset(request).db)
        values = sorted(recent_values(manager.all(), self.field))
        chosen = self.value()
        if chosen and chosen not in values:
            values.insert(0, chosen)
        return [(value, value) for value in values[:MAX_CHOICES]]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        """Rows with the chosen value."""
        value = self.value()
        return queryset.filter(**{self.field: value}) if value else queryset


def recent_values(queryset: QuerySet[Any], field: str) -> set[str]:
    """The distinct non-empty values of ``field`` among the newest :data:`RECENT_ROWS` rows.

    Two bounded queries: the ``date_done`` of the window's oldest row (an index-only
    walk of the ``date_done`` index), then the distinct values of the rows since then.
    """
    newest = queryset.order_by("-date_done").values_list("date_done", flat=True)
    cutoff = newest[RECENT_ROWS - 1 : RECENT_ROWS].first()
    window = queryset if cutoff is None else queryset.filter(date_done__gte=cutoff)
    found = window.exclude(**{f"{field}__isnull": True}).exclude(**{field: ""})
    return set(found.order_by().values_list(field, flat=True).distinct()[: MAX_CHOICES * 4])


def recent_values_filter(field: str, title: StrOrPromise) -> type[RecentValuesFilter]:
    """A :class:`RecentValuesFilter` on ``field``, shown as ``title``."""
    return type(
        f"Recent{field.title().replace('_', '')}Filter",
        (RecentValuesFilter,),
        {"field": field, "title": title, "parameter_name": f"{field}__exact"},
    )


TaskNameFilter = recent_values_filter("task_name", _("task name"))
PeriodicTaskNameFilter = recent_values_filter("periodic_task_name", _("periodic task name"))
WorkerFilter = recent_values_filter("worker", _("worker"))
QueueFilter = recent_values_filter("queue", _("queue"))
ExceptionTypeFilter = recent_values_filter("exception_type", _("exception type"))
