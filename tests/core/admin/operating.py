"""Driving the task list's actions as a browser would: the preview, then the confirmation."""

from __future__ import annotations

import re
from typing import Any

from django.test import Client
from django.urls import reverse

LIST = "admin:django_celery_results_taskresult_changelist"


def form(action: str, keys: list[int], across: bool) -> dict[str, Any]:
    """The list's action form: the action, and the rows (or all of them, ``across``)."""
    return {
        "action": action,
        "index": "0",
        "select_across": "1" if across else "0",
        "_selected_action": keys,
    }


def preview(
    client: Client, action: str, keys: list[int], *, across: bool = False, query: str = ""
) -> Any:
    """POST an action from the list: the preview page (or a refusal)."""
    return client.post(reverse(LIST) + query, form(action, keys, across))


def confirm(
    client: Client,
    action: str,
    keys: list[int],
    *,
    across: bool = False,
    query: str = "",
    token: str | None = None,
    **options: str,
) -> Any:
    """Preview, then POST the preview's form back: the job starts (following redirects)."""
    if token is None:
        page = preview(client, action, keys, across=across, query=query)
        assert page.status_code == 200, page.status_code
        found = re.search(r'name="dcr_confirm" value="([0-9a-f]+)"', page.content.decode())
        assert found, "no preview"
        token = found.group(1)
    return client.post(
        reverse(LIST) + query,
        {**form(action, keys, across), "dcr_confirm": token, **options},
        follow=True,
    )
