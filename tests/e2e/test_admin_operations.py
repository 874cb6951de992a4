"""Operating from the admin in a real Chromium: retry, revoke, terminate, bulk jobs.

A real ``celery worker`` stores the results (with ``STORE_CALLS``) and runs the admin's
jobs; Django's live server serves the admin; the browser clicks through each action's
preview and confirmation, and every outcome is checked in the database and against the
worker's own count of the tasks it ran.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery, _state
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry

from django_celery_results.models import AdminJob, TaskResult
from django_celery_results.testing.router import use_alias

from .conftest import TIMEOUT, Brokers, Combo, Worker, combo_params, running_worker, sender_app
from .conftest import wait_until as wait_for
from .test_admin_browser import T, browser, listed_ids, logged_in, page, shoot  # noqa: F401 (fixtures)

COMBOS = [
    Combo("default", "generic", "redis", "prefork"),
    Combo("postgres", "vendor", "redis", "prefork"),
]
#: Failures retried in bulk: thousands in spirit, sized to the CI budget.
BULK = 300
#: The worker's ADMIN_ACTION_RATE (rows a second).
RATE = 200

pytestmark = [
    pytest.mark.parametrize("combo", combo_params(COMBOS), indirect=True, scope="module"),
    pytest.mark.django_db(databases="__all__", transaction=True),
]


@pytest.fixture(scope="module")
def worker(
    combo: Combo, brokers: Brokers, django_db_setup: None, django_db_blocker: Any
) -> Iterator[Worker]:
    """A worker storing calls and running admin jobs at :data:`RATE` rows a second."""
    env = {"DEMO_STORE_CALLS": "1", "DEMO_ADMIN_ACTION_RATE": str(RATE)}
    with running_worker(combo, brokers, django_db_blocker, extra_env=env) as started:
        yield started


@pytest.fixture
def sender(worker: Worker, combo: Combo) -> Iterator[Celery]:
    """The sender's app, current and default (the live server's thread sends with it).

    Configured as the project's own app is (the demo tracks starts): the admin writes
    REVOKED at once only for a project that tracks starts.
    """
    with sender_app(worker, combo, {}) as app:
        app.conf.task_track_started = True
        before = _state.default_app
        _state.default_app = app
        try:
            yield app
        finally:
            _state.default_app = before


def ran(app: Celery, worker: Worker, name: str) -> int:
    """How many ``name`` tasks the worker ran (its own count, ``inspect stats``)."""
    stats = app.control.inspect(timeout=5).stats() or {}
    return sum(int(node.get("total", {}).get(name, 0)) for node in stats.values())


def test_retry_from_the_detail_page_links_both_runs(
    page: Any,  # noqa: F811
    live_server: Any,
    sender: Celery,
    worker: Worker,
    combo: Combo,
) -> None:
    failed = sender.send_task(T + "fail", args=("retry me",))
    failed.get(timeout=TIMEOUT, propagate=False)
    row = TaskResult.objects.get(task_id=failed.id)
    page.goto(f"{live_server.url}/admin/django_celery_results/taskresult/{row.pk}/change/")
    shoot(page, f"admin-detail-actions-{combo.alias}")
    page.click("#dcr-retry_tasks")
    page.wait_for_selector("#dcr-preview")
    assert page.inner_text("#dcr-preview-count") == "Task results that match: 1."
    page.click("#dcr-confirm")
    page.wait_for_selector("#dcr-job-progress")
    assert "1 done, 0 skipped, 0 failed of 1" in page.inner_text("#dcr-job-progress")
    retry = wait_for(
        lambda: TaskResult.objects.filter(retry_of=failed.id, status="FAILURE").first(),
        what="the retry's run",
    )
    assert retry.task_args == row.task_args  # the same call, as Celery shows it
    page.goto(f"{live_server.url}/admin/django_celery_results/taskresult/{row.pk}/change/")
    page.click("#dcr-retries a")
    page.wait_for_selector("#dcr-retry-of")
    assert retry.task_id in page.inner_text("h2") + page.inner_text("#content")
    assert failed.id in page.inner_text("#dcr-retry-of")


def test_a_success_is_retried_only_when_asked(
    page: Any,  # noqa: F811
    live_server: Any,
    sender: Celery,
    worker: Worker,
    combo: Combo,
) -> None:
    done = sender.send_task(T + "add", args=(2, 3))
    done.get(timeout=TIMEOUT)
    row = TaskResult.objects.get(task_id=done.id)
    page.goto(f"{live_server.url}/admin/django_celery_results/taskresult/{row.pk}/change/")
    page.click("#dcr-retry_tasks")
    page.click("#dcr-confirm")
    page.wait_for_selector("#dcr-job-skipped")
    assert "it succeeded" in page.inner_text("#dcr-job-skipped")
    assert not TaskResult.objects.filter(retry_of=done.id).exists()
    page.goto(f"{live_server.url}/admin/django_celery_results/taskresult/{row.pk}/change/")
    page.click("#dcr-retry_tasks")
    page.check("#dcr-succeeded")
    page.click("#dcr-confirm")
    page.wait_for_selector("#dcr-job-progress")
    retry = wait_for(
        lambda: TaskResult.objects.filter(retry_of=done.id, status="SUCCESS").first(),
        what="the retried success",
    )
    assert retry.result == "5"


def test_revoke_shows_revoked_at_once_and_terminate_stops_a_running_task(
    page: Any,  # noqa: F811
    live_server: Any,
    sender: Celery,
    worker: Worker,
    combo: Combo,
) -> None:
    # PENDING: sent to a queue no worker reads (the row is the sender's PENDING row).
    with sender_app(worker, combo, {"TRACK_PENDING": True}) as tracking:
        waiting = tracking.send_task(T + "add", args=(1, 1), queue="nobody-reads-this")
        from django_celery_results import pending

        pending.flush()
    use_alias(combo.alias)  # sender_app routes back to the default database when it ends
    running = sender.send_task(T + "slow", args=(60,))
    wait_for(
        lambda: TaskResult.objects.filter(task_id=running.id, status="STARTED").exists(),
        what="the slow task's start",
    )
    url = f"{live_server.url}/admin/django_celery_results/taskresult/"
    page.goto(f"{url}?q={waiting.id}")
    page.check("#result_list input.action-select")
    page.select_option("select[name=action]", "revoke_tasks")
    page.click("button[name=index]")
    page.wait_for_selector("#dcr-preview")
    page.click("#dcr-confirm")
    page.wait_for_selector("#dcr-job-progress")
    assert TaskResult.objects.get(task_id=waiting.id).status == "REVOKED"

    page.goto(f"{url}?q={running.id}")
    page.check("#result_list input.action-select")
    page.select_option("select[name=action]", "terminate_task")
    page.click("button[name=index]")
    page.select_option("#dcr-signal", "SIGKILL")
    page.click("#dcr-confirm")
    page.wait_for_selector("#dcr-job-progress")
    stopped = wait_for(
        lambda: TaskResult.objects.filter(task_id=running.id).exclude(status="STARTED").first(),
        what="the terminated task's final state",
    )
    assert stopped.status in ("REVOKED", "FAILURE")


def test_bulk_retry_of_every_matching_failure_at_a_rate(
    page: Any,  # noqa: F811
    live_server: Any,
    sender: Celery,
    worker: Worker,
    combo: Combo,
    django_user_model: Any,
) -> None:
    failures = [sender.send_task(T + "fail", args=(f"bulk {n}",)) for n in range(BULK)]
    others = [sender.send_task(T + "add", args=(n, 1)) for n in range(5)]
    for result in failures + others:
        result.get(timeout=TIMEOUT, propagate=False)
    before = ran(sender, worker, T + "fail")
    if combo.alias != "default":  # the worker's admin log needs the user in its database
        admin = django_user_model.objects.get(username="admin")
        admin.save(using=combo.alias)
    url = f"{live_server.url}/admin/django_celery_results/taskresult/"
    page.goto(f"{url}?status__exact=FAILURE&task_name__exact={T}fail")
    page.check("#action-toggle")
    page.click(".actions .question a")  # "Select all … task results"
    page.select_option("select[name=action]", "retry_tasks")
    page.click("button[name=index]")
    page.wait_for_selector("#dcr-preview")
    assert page.inner_text("#dcr-preview-count") == f"Task results that match: {BULK}."
    shoot(page, f"admin-preview-{combo.alias}")
    page.click("#dcr-confirm")
    page.wait_for_selector("#dcr-job-progress")
    shoot(page, f"admin-job-{combo.alias}")
    job = wait_for(
        lambda: AdminJob.objects.filter(state__in=("done", "failed", "cancelled")).first(),
        what="the bulk job's end",
    )
    assert AdminJob.objects.count() == 1
    assert (job.state, job.total, job.done, job.failed) == ("done", BULK, BULK, 0)
    retries = TaskResult.objects.filter(retry_of__in=[r.id for r in failures])
    wait_for(lambda: retries.filter(status="FAILURE").count() == BULK, what="every retry's run")
    # Each failure retried once, each retry run once (the worker's own count).
    assert retries.values("retry_of").distinct().count() == BULK
    wait_for(lambda: ran(sender, worker, T + "fail") - before == BULK, what="the worker's count")
    # Nothing outside the filter was touched.
    assert not TaskResult.objects.filter(retry_of__in=[r.id for r in others]).exists()
    # The admin (this process) logs the start in its database; the worker logs the end
    # in its own, which here is the combination's (one database in a real project).
    entries = [
        entry
        for alias in dict.fromkeys(["default", combo.alias])
        for entry in LogEntry.objects.using(alias).filter(object_id=str(job.pk)).order_by("pk")
    ]
    flags = [entry.action_flag for entry in entries]
    assert flags == [ADDITION, CHANGE]
    assert f"on {BULK} task result(s)" in entries[0].change_message
    assert "status__exact=FAILURE" in entries[0].change_message
    assert f"retry done: {BULK} done, 0 skipped, 0 failed of {BULK}" in entries[1].change_message


#: What the layout check reads: the page's width, and every cell whose text overflows it.
LAYOUT = """() => ({
    width: Math.max(document.documentElement.scrollWidth,
        document.querySelector('#changelist .results').scrollWidth
            - document.querySelector('#changelist .results').clientWidth + 1440),
    overflowing: [...document.querySelectorAll('#result_list th, #result_list td')]
        .filter(cell => cell.scrollWidth > cell.clientWidth + 1)
        .map(cell => cell.className + ': ' + cell.textContent.trim()),
    breaking: [...document.querySelectorAll('#result_list th, #result_list td, .dcr-summary')]
        .map(cell => getComputedStyle(cell))
        .filter(style => style.wordBreak === 'break-all' || style.overflowWrap === 'anywhere')
        .length,
})"""


def test_the_russian_admin_fits_1440_pixels_without_breaking_words(
    browser: Any,  # noqa: F811
    live_server: Any,
    sender: Celery,
    worker: Worker,
    combo: Combo,
    django_user_model: Any,
) -> None:
    failed = sender.send_task(T + "fail", args=("Недостаточно средств на карте",))
    failed.get(timeout=TIMEOUT, propagate=False)
    russian = {"viewport": {"width": 1440, "height": 900}, "locale": "ru-RU"}
    with logged_in(browser, live_server, django_user_model, "ru", **russian) as opened:
        opened.goto(f"{live_server.url}/admin/django_celery_results/taskresult/")
        assert "Задача" in opened.inner_text("#result_list thead") or "ID" in opened.inner_text(
            "#result_list thead"
        )
        shoot(opened, "admin-list-ru")
        measured = opened.evaluate(LAYOUT)
        assert measured["width"] <= 1440, measured
        assert measured["overflowing"] == [], measured
        assert measured["breaking"] == 0, measured
        row = TaskResult.objects.get(task_id=failed.id)
        opened.goto(f"{live_server.url}/admin/django_celery_results/taskresult/{row.pk}/change/")
        assert opened.evaluate("document.documentElement.scrollWidth") <= 1440
        assert "Повторить" in opened.inner_text("#dcr-actions")
