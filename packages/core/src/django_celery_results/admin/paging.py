"""Counting and paging a result table of any size: estimates, bounded counts, keyset pages.

A results table grows to tens of millions of rows, where ``SELECT COUNT(*)`` on every
page view and ``OFFSET`` deep into the table each read the whole table. Here:

- the unfiltered list shows the database's estimate of the table's rows (the driver's
  ``estimated_row_count``), counted exactly only when the table is small;
- a filtered list counts at most :data:`COUNT_LIMIT` rows and says "10,000+" past it;
- page numbers reach :data:`COUNT_LIMIT` rows deep; past them "Older" continues from the
  page's last row (``?before=<date_done>~<id>``), served by the ``date_done`` index.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.admin.views.main import PAGE_VAR, ChangeList
from django.core.paginator import Paginator
from django.db.models import Q, QuerySet
from django.http import HttpResponseBadRequest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from ..drivers import driver_for_alias

if TYPE_CHECKING:
    from django.http import HttpRequest

#: Rows a list counts before it stops and says "10,000+"; also how deep page numbers go.
COUNT_LIMIT = 10_000
#: The largest id a cursor may name (a signed 64-bit integer), and its digits.
MAX_PK = 2**63 - 1
MAX_PK_DIGITS = 19
#: Longest date text a cursor may hold (an ISO datetime with microseconds and offset).
MAX_DATE_LENGTH = 40
#: The query parameter of the keyset cursor: the last row of the page before.
BEFORE_VAR = "before"
#: The ordering keyset pages follow: the admin's default (newest first, ties by id).
KEYSET_ORDERING = ["-date_done", "-pk"]


class ResultPaginator(Paginator):  # type: ignore[type-arg]
    """A paginator that never counts more than :data:`COUNT_LIMIT` rows."""

    #: The count is the database's estimate of the whole table.
    estimated = False
    #: The count stopped at :data:`COUNT_LIMIT`: there are more rows.
    capped = False

    @cached_property
    def count(self) -> int:
        """The estimate (unfiltered, big table) or the rows counted up to the limit."""
        queryset = self.object_list
        assert isinstance(queryset, QuerySet)
        if not queryset.query.has_filters():
            estimate = driver_for_alias(queryset.db).ops.estimated_row_count(queryset.model)
            if estimate is not None and estimate > COUNT_LIMIT:
                self.estimated = True
                return estimate
        counted = queryset.order_by()[: COUNT_LIMIT + 1].count()
        if counted > COUNT_LIMIT:
            self.capped = True
            return COUNT_LIMIT
        return counted

    @cached_property
    def num_pages(self) -> int:
        """Pages reachable by number: at most :data:`COUNT_LIMIT` rows deep."""
        reachable = min(self.count, COUNT_LIMIT)
        if reachable == 0 and not self.allow_empty_first_page:
            return 0
        return max(1, math.ceil(max(reachable - self.orphans, 0) / self.per_page))

    @property
    def more_than_counted(self) -> bool:
        """Rows lie past the last numbered page (reach them with "Older")."""
        return self.estimated or self.capped


def parse_cursor(value: str) -> tuple[datetime, int] | None:
    """Read ``<date_done ISO>~<id>``; None when it is not one (a hand-edited link)."""
    when, _, pk = value.rpartition("~")
    if not when or not (pk.isascii() and pk.isdecimal() and len(pk) <= MAX_PK_DIGITS):
        return None
    if int(pk) > MAX_PK:
        return None
    try:
        moment = parse_datetime(when[:MAX_DATE_LENGTH])
        if moment is None:
            return None
        if settings.USE_TZ and timezone.is_naive(moment):
            moment = timezone.make_aware(moment, UTC)
        if timezone.is_aware(moment):
            moment.astimezone(UTC)  # an offset past the calendar's ends overflows here
    except (ValueError, OverflowError):  # well formed, but no such date (2024-02-30)
        return None
    return moment, int(pk)


def nul_parameter(request: HttpRequest) -> str | None:
    """The name of a query parameter holding a NUL character, or None.

    PostgreSQL refuses NUL in text, so such a filter or search would be a server error.
    """
    for key, values in request.GET.lists():
        if "\x00" in key or any("\x00" in value for value in values):
            return key
    return None


def refused_query(request: HttpRequest) -> HttpResponseBadRequest | None:
    """A 400 for a query string no database can run (a NUL in a filter), else None."""
    bad = nul_parameter(request)
    if bad is None:
        return None
    return HttpResponseBadRequest(
        f"The query parameter {bad!r} holds a NUL character; remove it.",
        content_type="text/plain",
    )


def format_cursor(date_done: datetime, pk: int) -> str:
    """The cursor of a row: its ``date_done`` and its id."""
    return f"{date_done.isoformat()}~{pk}"


class ResultChangeList(ChangeList):
    """The task result list, with the keyset cursor ``?before=`` beside page numbers."""

    def __init__(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        raw = request.GET.get(BEFORE_VAR, "")
        self.cursor = parse_cursor(raw) if raw else None
        super().__init__(request, *args, **kwargs)
        # The search form carries self.params as hidden fields: a new search starts from
        # the newest rows, not behind the cursor.
        self.params.pop(BEFORE_VAR, None)

    def get_results(self, request: HttpRequest) -> None:
        """Django's results, but never "show all" or one unsliced page past a bound count."""
        super().get_results(request)
        paginator = self.paginator
        if isinstance(paginator, ResultPaginator) and paginator.more_than_counted:
            self.can_show_all = False
            self.show_all = False
            self.multi_page = True
            self.result_list = paginator.page(self.page_num).object_list

    def get_filters_params(self, params: Any = None) -> Any:
        """The lookups of the query string, without the cursor (it is not a field lookup)."""
        lookups = super().get_filters_params(params)
        lookups.pop(BEFORE_VAR, None)
        return lookups

    def get_query_string(
        self, new_params: dict[str, Any] | None = None, remove: Iterable[str] | None = None
    ) -> str:
        """Page links keep the cursor; links to other filters or orders start afresh."""
        new_params = dict(new_params or {})
        if remove or set(new_params) - {PAGE_VAR, BEFORE_VAR}:
            new_params.setdefault(BEFORE_VAR, None)
        return super().get_query_string(new_params, remove)

    def get_ordering(self, request: HttpRequest, queryset: QuerySet[Any]) -> list[Any]:
        """Django's ordering, with the id tie-breaker in the sort's own direction.

        ``ORDER BY date_done, id DESC`` cannot walk the ``date_done`` index (which holds
        the id) on MySQL; ``date_done, id`` can.
        """
        ordering = list(super().get_ordering(request, queryset))
        if ordering == ["date_done", "-pk"]:
            return ["date_done", "pk"]
        return ordering

    def get_queryset(self, request: HttpRequest, exclude_parameters: Any = None) -> QuerySet[Any]:
        """The filtered rows; older than the cursor's row when in the default order."""
        queryset = super().get_queryset(request, exclude_parameters)
        if self.cursor is not None and self.follows_keyset(queryset):
            when, pk = self.cursor
            # date_done <= when first, so the date_done index bounds the scan; ties by id.
            queryset = queryset.filter(date_done__lte=when).exclude(Q(date_done=when, pk__gte=pk))
        return queryset

    def follows_keyset(self, queryset: QuerySet[Any]) -> bool:
        """Is the list in the default order (newest first), the one cursors follow?"""
        return list(queryset.query.order_by) == KEYSET_ORDERING

    @property
    def older_url(self) -> str | None:
        """The link to the rows after the last one shown, when numbers do not reach them."""
        paginator = getattr(self, "paginator", None)
        if not isinstance(paginator, ResultPaginator) or not self.result_list:
            return None
        if not self.follows_keyset(self.queryset):
            return None
        last_page = self.page_num >= paginator.num_pages
        if not (last_page and paginator.more_than_counted):
            return None
        last = list(self.result_list)[-1]
        return self.get_query_string(
            {BEFORE_VAR: format_cursor(last.date_done, last.pk), PAGE_VAR: None}
        )

    @property
    def newest_url(self) -> str | None:
        """The link back to the newest rows, while a cursor is followed."""
        return self.get_query_string({PAGE_VAR: None}) if self.cursor else None
