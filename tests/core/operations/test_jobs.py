"""Admin jobs: a fixed set of rows, acted on once, at a rate, cancellable, audited."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from unittest import mock

import pytest
from celery import Celery
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.auth.models import User
from django.test import override_settings
from django.utils import timezone

from django_celery_results.models import AdminJob, AdminJobItem, TaskResult
from django_celery_results.operations import jobs

pytestmark = pytest.mark.django_db


@pytest.fixture
def user() -> User:
    return User.objects.create_user("operator", is_staff=True)


def add(count: int, status: str = "STARTED", prefix: str = "t") -> None:
    TaskResult.objects.bulk_create(
        TaskResult(task_id=f"{prefix}-{n}", task_name="proj.work", status=status)
        for n in range(count)
    )


def start(user: User, token: str = "a" * 32) -> tuple[AdminJob, bool]:
    return jobs.start(
        TaskResult.objects.filter(status="STARTED"),
        action="revoke",
        options={},
        query="status__exact=STARTED",
        token=token,
        user=user,
    )


def test_the_set_is_fixed_at_confirmation(app: Celery, user: User) -> None:
    add(5)
    job, new = start(user)
    assert new
    assert job.total == 5
    add(3, prefix="late")  # arrive while the job waits for a worker
    with mock.patch.object(app.control, "revoke") as revoke:
        jobs.run(job.pk, "default", budget=None)
    revoked = sorted(task_id for call in revoke.call_args_list for task_id in call.args[0])
    assert revoked == [f"t-{n}" for n in range(5)]
    job.refresh_from_db()
    assert (job.state, job.done, job.key) == ("done", 5, None)
    assert not AdminJobItem.objects.exists()


def test_the_same_job_confirmed_twice_starts_once(user: User) -> None:
    add(2)
    first, _ = start(user)
    again, new = start(user)  # a re-POST: the same token
    assert (again.pk, new) == (first.pk, False)
    other, new = start(user, token="b" * 32)  # another operator, while it runs
    assert (other.pk, new) == (first.pk, False)
    assert AdminJob.objects.count() == 1


def test_the_rate_limit_paces_the_chunks(app: Celery, user: User) -> None:
    add(6)
    job, _ = start(user)
    with (
        override_settings(DJANGO_CELERY_RESULTS={"ADMIN_ACTION_RATE": 20}),
        mock.patch.object(app.control, "revoke") as revoke,
    ):
        began = time.monotonic()
        jobs.run(job.pk, "default", budget=None)
        took = time.monotonic() - began
    # 6 rows at 20 a second: chunks of 20 rows, so one chunk, then a pause of 0.3 s.
    assert revoke.call_count == 1
    assert took >= 0.3


def test_a_cancelled_job_stops_before_its_next_chunk(app: Celery, user: User) -> None:
    add(5)
    job, _ = start(user)
    with (
        override_settings(DJANGO_CELERY_RESULTS={"ADMIN_ACTION_RATE": 2}),
        mock.patch.object(app.control, "revoke") as revoke,
    ):
        revoke.side_effect = lambda ids: jobs.cancel(AdminJob.objects.get(pk=job.pk))
        jobs.run(job.pk, "default", budget=None)
    job.refresh_from_db()
    assert job.state == "cancelled"
    assert revoke.call_count == 1  # one chunk of 2, then the cancel was seen
    assert (job.done, job.total) == (2, 5)


def test_a_slice_hands_over_to_a_new_task(app: Celery, user: User) -> None:
    add(3)
    job, _ = start(user)
    with (
        override_settings(DJANGO_CELERY_RESULTS={"ADMIN_ACTION_RATE": 1}),
        mock.patch.object(app.control, "revoke"),
    ):
        assert jobs.run(job.pk, "default", budget=0.5) is True  # more to do
    job.refresh_from_db()
    assert (job.state, job.done) == ("running", 1)


def test_the_admin_log_records_start_and_outcome(app: Celery, user: User) -> None:
    add(2)
    TaskResult.objects.create(task_id="done-1", status="SUCCESS")
    job, _ = jobs.start(
        TaskResult.objects.all(),
        action="revoke",
        options={},
        query="",
        token="c" * 32,
        user=user,
    )
    with mock.patch.object(app.control, "revoke"):
        jobs.run(job.pk, "default", budget=None)
    entries = list(LogEntry.objects.order_by("pk").values_list("action_flag", "change_message"))
    assert [flag for flag, _ in entries] == [ADDITION, CHANGE]
    assert "operator started revoke" in entries[0][1]
    assert "on 3 task result(s)" in entries[0][1]
    assert "revoke done: 2 done, 1 skipped, 0 failed of 3" in entries[1][1]
    assert json.loads(AdminJob.objects.get().skipped_why) == {"finished": 1}


def test_a_job_no_broker_can_take_fails_and_says_so(user: User) -> None:
    add(1)
    job, _ = start(user)
    with mock.patch.object(jobs.run_admin_job, "apply_async", side_effect=OSError("refused")):
        jobs.launch(job)
    job.refresh_from_db()
    assert job.state == "failed"
    assert "could not be sent to a worker" in job.error
    assert job.key is None


def test_rows_a_lost_runner_claimed_are_reported_not_acted_on_twice(
    app: Celery, user: User
) -> None:
    add(3)
    job, _ = start(user)
    assert len(jobs.claim(job.pk, "default", 1) or []) == 1  # a runner that died after claiming
    with mock.patch.object(app.control, "revoke") as revoke:
        jobs.run(job.pk, "default", budget=None)
    assert sum(len(call.args[0]) for call in revoke.call_args_list) == 2
    job.refresh_from_db()
    assert (job.state, job.done) == ("done", 2)
    assert job.error.startswith("1 row(s) were claimed by a runner that was lost")


def test_a_job_whose_runner_was_lost_is_ended_not_kept_forever(user: User) -> None:
    add(2)
    job, _ = start(user)
    long_ago = timezone.now() - jobs.LOST_AFTER - timedelta(seconds=1)
    AdminJob.objects.filter(pk=job.pk).update(state="running", beat_at=long_ago)
    # The same action on the same filter: the lost job ends, a new one starts.
    again, new = start(user, token="d" * 32)
    assert new
    assert again.pk != job.pk
    job.refresh_from_db()
    assert (job.state, job.key) == ("failed", None)
    assert "runner was lost" in job.error
    # Cancel ends a lost job at once (nothing would see the request).
    AdminJob.objects.filter(pk=again.pk).update(state="running", beat_at=long_ago)
    assert jobs.cancel(AdminJob.objects.get(pk=again.pk))
    assert AdminJob.objects.get(pk=again.pk).state == "cancelled"


def test_more_rows_than_the_bound_start_nothing(user: User) -> None:
    add(3)
    with (
        override_settings(DJANGO_CELERY_RESULTS={"ADMIN_ACTION_MAX_ROWS": 2}),
        pytest.raises(jobs.TooMany),
    ):
        start(user)
    assert not AdminJob.objects.exists()
    assert not AdminJobItem.objects.exists()


def test_a_failing_runner_ends_its_job_failed(user: User) -> None:
    add(1)
    job, _ = start(user)
    with mock.patch.object(jobs, "claim", side_effect=RuntimeError("database gone")):
        jobs.run_admin_job.apply(args=(job.pk,))
    job.refresh_from_db()
    assert job.state == "failed"
    assert "database gone" in job.error


def test_each_chunk_counted_is_a_heartbeat(app: Celery, user: User) -> None:
    """A job that counts chunks is never taken for one whose runner was lost."""
    add(2)
    job, _ = start(user)
    long_ago = timezone.now() - jobs.LOST_AFTER - timedelta(seconds=1)
    AdminJob.objects.filter(pk=job.pk).update(state="running", beat_at=long_ago)
    with (
        override_settings(DJANGO_CELERY_RESULTS={"ADMIN_ACTION_RATE": 1}),
        mock.patch.object(app.control, "revoke"),
    ):
        assert jobs.run(job.pk, "default", budget=0.5) is True
    job.refresh_from_db()
    assert job.beat_at is not None
    assert job.beat_at > long_ago + jobs.LOST_AFTER
    assert jobs.cancel(job)
    assert AdminJob.objects.get(pk=job.pk).state == "cancelling"  # live: asked, not ended
