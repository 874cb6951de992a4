"""The admin in a real Chromium (Playwright, Debian's Chromium), on rows a worker wrote.

A real ``celery worker`` stores the results; Django's live server serves the admin; the
browser logs in, lists, filters, searches, opens a detail page and the dashboard, and
each number it reads is checked against the database. With ``DCR_SCREENSHOTS=<dir>`` the
run also saves the screenshots that ``docs/admin.md`` shows.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

from django_celery_results.history import backlog
from django_celery_results.history.rollup import catch_up
from django_celery_results.models import TaskResult
from django_celery_results.testing.router import use_alias

from .conftest import TIMEOUT, Combo, Worker, combo_params, sender_app

CHROMIUM = "/usr/bin/chromium"
ASYNC_UNSAFE = "DJANGO_ALLOW_ASYNC_UNSAFE"
COMBOS = [
    Combo("default", "generic", "redis", "prefork"),
    Combo("postgres", "vendor", "redis", "prefork"),
]
PASSWORD = "browser-test-password"
T = "demo_app.tasks."

pytestmark = [
    pytest.mark.parametrize("combo", combo_params(COMBOS), indirect=True, scope="module"),
    # The admin user lives in "default"; the results in the combination's database.
    pytest.mark.django_db(databases="__all__", transaction=True),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless (``playwright install`` cannot download one here)."""
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: scripts/bootstrap --system-deps installs chromium")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in this thread while it is open;
    # the ORM calls of these tests (and their database flushes) stay synchronous.
    before = os.environ.get(ASYNC_UNSAFE)
    os.environ[ASYNC_UNSAFE] = "true"
    try:
        with sync_playwright() as playwright:
            launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                yield launched
            finally:
                launched.close()
    finally:
        if before is None:
            os.environ.pop(ASYNC_UNSAFE, None)
        else:
            os.environ[ASYNC_UNSAFE] = before


@contextmanager
def logged_in(
    browser: Any, live_server: Any, user_model: Any, username: str, **options: Any
) -> Iterator[Any]:
    """A page logged in as a new superuser, in a browser context with ``options``."""
    user_model.objects.create_superuser(username, f"{username}@example.com", PASSWORD)
    context = browser.new_context(**{"viewport": {"width": 1400, "height": 900}, **options})
    opened = context.new_page()
    opened.set_default_timeout(TIMEOUT * 1000 / 3)
    try:
        opened.goto(f"{live_server.url}/admin/login/")
        opened.fill("#id_username", username)
        opened.fill("#id_password", PASSWORD)
        opened.click("input[type=submit]")
        opened.wait_for_selector("#site-name")
        yield opened
    finally:
        context.close()


@pytest.fixture
def page(browser: Any, live_server: Any, django_user_model: Any) -> Iterator[Any]:
    """A logged-in admin page, 1400 by 900 pixels."""
    with logged_in(browser, live_server, django_user_model, "admin", locale="en-US") as opened:
        yield opened


@pytest.fixture
def results(worker: Worker, combo: Combo) -> dict[str, list[str]]:
    """Three sums and two failures, stored by the worker; their ids by task name."""
    with sender_app(worker, combo, {}) as app:
        added = [app.send_task(T + "add", args=(n, 10)) for n in range(3)]
        failed = [app.send_task(T + "fail", args=(f"boom {n}",)) for n in range(2)]
        for result in added + failed:
            result.get(timeout=TIMEOUT, propagate=False)
    use_alias(combo.alias)  # sender_app routes back to the default database when it ends
    return {"add": [r.id for r in added], "fail": [r.id for r in failed]}


@pytest.fixture(autouse=True)
def routed(combo: Combo) -> Iterator[None]:
    """Route the results to the combination's database, in the live server's thread too."""
    use_alias(combo.alias)
    try:
        yield
    finally:
        use_alias(None)


def shoot(page: Any, name: str) -> None:
    """Save a screenshot for the docs when ``DCR_SCREENSHOTS`` names a directory."""
    folder = os.environ.get("DCR_SCREENSHOTS")
    if folder:
        page.screenshot(path=str(Path(folder) / f"{name}.png"))


def listed_ids(page: Any) -> list[str]:
    """The full task ids of the list's rows (each short id's title)."""
    return [str(title) for title in page.eval_on_selector_all(
        "#result_list .dcr-id", "spans => spans.map(s => s.title)"
    )]  # fmt: skip


def test_list_filter_search_and_detail(
    page: Any, live_server: Any, results: dict[str, list[str]], combo: Combo
) -> None:
    page.goto(f"{live_server.url}/admin/django_celery_results/taskresult/")
    everything = set(results["add"] + results["fail"])
    assert everything <= set(listed_ids(page))
    assert page.inner_text(".dcr-count") == f"{TaskResult.objects.count()} task results"
    shoot(page, f"admin-list-{combo.alias}")

    page.click("#changelist-filter a[href*='status__exact=FAILURE']")
    page.wait_for_url("**status__exact=FAILURE**")
    assert set(listed_ids(page)) == set(results["fail"])

    page.goto(f"{live_server.url}/admin/django_celery_results/taskresult/")
    page.click(f"#changelist-filter a[href*='task_name__exact={T}add']")
    page.wait_for_url("**task_name__exact=**")
    wanted = set(TaskResult.objects.filter(task_name=T + "add").values_list("task_id", flat=True))
    assert set(listed_ids(page)) == wanted

    [failure] = results["fail"][:1]
    page.goto(f"{live_server.url}/admin/django_celery_results/taskresult/")
    page.fill("#searchbar", failure)
    page.press("#searchbar", "Enter")
    page.wait_for_url("**q=**")
    assert listed_ids(page) == [failure]

    page.click("#result_list tbody tr a")
    page.wait_for_selector(".dcr-timeline")
    timeline = page.inner_text(".dcr-timeline")
    assert timeline.count(":") >= 3 * 3  # created, started, done, each a time
    assert "processing" in page.inner_text(".dcr-spans")
    result = page.inner_text(".field-result_data pre")
    assert '"exc_type": "ValueError"' in result
    assert "boom 0" in result
    assert "Traceback" in page.inner_text(".field-traceback_text pre")
    assert page.inner_text(".field-args pre") == "('boom 0',)"
    assert page.locator("input[name=_save]").count() == 0
    shoot(page, f"admin-detail-{combo.alias}")


def test_dashboard_numbers_equal_the_database(
    page: Any, live_server: Any, results: dict[str, list[str]], combo: Combo
) -> None:
    catch_up()
    page.goto(f"{live_server.url}/admin/django_celery_results/taskresult/")
    page.click("text=Dashboard")
    page.wait_for_selector("#dcr-totals")
    finished = TaskResult.objects.filter(status__in=("SUCCESS", "FAILURE", "REVOKED"))
    day = finished.filter(date_done__gte=timezone.now() - timedelta(hours=24))
    assert page.inner_text("[data-figure=total]") == str(day.count())
    for state in ("SUCCESS", "FAILURE"):
        shown = page.inner_text(f"[data-state={state}]")
        assert shown == str(day.filter(status=state).count())
    for name in (T + "add", T + "fail"):
        cell = page.inner_text(f"tr[data-task='{name}'] [data-col=total]")
        assert cell == str(day.filter(task_name=name).count())
    # Incidents: the failures by exception type and task, each linked to its rows.
    failures = day.filter(status="FAILURE").count()
    counts = page.eval_on_selector_all(
        "#dcr-incidents [data-col=count]", "cells => cells.map(c => Number(c.textContent))"
    )
    assert sum(counts) == failures
    assert page.inner_text(f"#dcr-incidents tr[data-task='{T}fail']").startswith("ValueError")
    # Workers: finished and failed in the window, from the same history.
    worker_totals = page.eval_on_selector_all(
        "#dcr-workers [data-col=total]", "cells => cells.map(c => Number(c.textContent))"
    )
    assert sum(worker_totals) == day.count()
    # The chart: axes and time ticks, failures on their own scale; a bar opens its rows.
    assert page.locator("#dcr-chart text").count() >= 3
    assert page.locator("#dcr-failed-chart rect.failed").count() >= 1
    # Processing time is measured (track_started); waiting needs TRACK_PENDING.
    row = f"tr[data-task='{T}add']"
    assert page.locator(f"{row} [data-col=run-p50]").count() == 1
    assert page.locator(f"{row} [data-col=wait-missing]").count() == 1
    shoot(page, f"admin-dashboard-{combo.alias}")
    page.click("[data-window='1h']")
    page.wait_for_url("**window=1h**")
    hour = finished.filter(date_done__gte=timezone.now() - timedelta(hours=1))
    assert page.inner_text("[data-figure=total]") == str(hour.count())
    page.locator("#dcr-chart a[data-bar] rect.done[height]:not([height='0.0'])").last.click(
        force=True
    )
    page.wait_for_url("**date_done__gte=**")
    assert set(listed_ids(page)) <= set(hour.values_list("task_id", flat=True))
    assert listed_ids(page)


def test_dashboard_task_picker_windows_and_refresh(
    page: Any, live_server: Any, results: dict[str, list[str]], combo: Combo
) -> None:
    catch_up()
    url = f"{live_server.url}/admin/django_celery_results/taskresult/dashboard/"
    page.goto(f"{url}?window=15m")
    for window in ("15m", "1h", "6h", "24h", "7d", "30d"):
        assert page.locator(f"[data-window='{window}']").count() == 1
    page.click(f"[data-task-pick='{T}fail']")
    page.wait_for_url("**task=**")
    # One task's series alone: its finished tasks, and its failures below them.
    assert page.locator("#dcr-failed-chart rect.failed").count() >= 1
    page.click(f"[data-task-pick='{T}add']")
    page.wait_for_url(f"**task={T}add**")
    assert page.locator("#dcr-chart rect.done").count() >= 1
    assert page.locator("#dcr-failed-chart rect.failed").count() == 0
    page.click("[data-refresh='30']")
    page.wait_for_url("**refresh=30**")
    assert page.locator("meta[http-equiv=refresh]").get_attribute("content") == "30"
    assert "Exact counts" in page.inner_text("#dcr-coverage")


def test_dashboard_in_dark_mode_and_without_javascript(
    browser: Any, live_server: Any, results: dict[str, list[str]], django_user_model: Any
) -> None:
    catch_up()
    dark = {"color_scheme": "dark", "java_script_enabled": False}
    with logged_in(browser, live_server, django_user_model, "dark", **dark) as opened:
        opened.goto(f"{live_server.url}/admin/django_celery_results/taskresult/dashboard/")
        assert opened.inner_text("[data-figure=total]") != ""
        text = opened.eval_on_selector("#dcr-chart text", "e => getComputedStyle(e).fill")
        background = opened.eval_on_selector("body", "e => getComputedStyle(e).backgroundColor")
        assert text != background  # the axis labels follow the theme's text colour
        shoot(opened, "admin-dashboard-dark")


def test_dashboard_backlog_by_queue_and_its_trend(
    page: Any, live_server: Any, results: dict[str, list[str]], combo: Combo
) -> None:
    now = timezone.now()
    with override_settings(DJANGO_CELERY_RESULTS={"TRACK_PENDING": True}):
        for n in range(3):
            TaskResult.objects.create(task_id=f"waits-{n}", status="PENDING", queue="slowq")
        backlog.sample(combo.alias, now - timedelta(minutes=2))
        TaskResult.objects.create(task_id="waits-3", status="PENDING", queue="slowq")
        backlog.sample(combo.alias, now - timedelta(minutes=1))
        page.goto(f"{live_server.url}/admin/django_celery_results/taskresult/dashboard/?window=1h")
        row = page.locator("#dcr-backlog tr[data-queue='slowq']")
        assert row.locator("[data-col=pending]").inner_text() == "4"
        assert row.locator("svg.dcr-spark polyline").count() == 1
        assert row.locator("[data-col=since]").inner_text().startswith("3 at ")
        assert "at most 4" in row.locator("[data-col=since]").inner_text()
