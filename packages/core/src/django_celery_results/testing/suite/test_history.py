"""The rolled-up history: every write makes the row count again, and counts stay exact."""

from __future__ import annotations

import itertools
import random
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest
from celery import states
from django.db.models import Count
from django.utils import timezone

from ...history import sketch
from ...history.buckets import HOUR, MINUTE, QUARTER_DAY, TEN_MINUTES, floor
from ...history.rollup import catch_up
from ...history.windows import Window, chart, series_counts, spreads, window
from ...models import TaskResult
from ...states import TERMINAL_STATES
from ...stats import nearest_rank
from .helpers import new_id, row

#: What a driver's ``from django_celery_results.testing.suite import *`` takes.
__all__ = ["TestHistory"]

FINAL = sorted(TERMINAL_STATES)


def rolled_up(task_id: str) -> bool:
    return bool(TaskResult.objects.values_list("rolled_up", flat=True).get(task_id=task_id))


def raw_counts(span: Window, prefix: str) -> Counter[tuple[str, str, str, str, str]]:
    """``COUNT(*)`` of finished rows in the window, by the history's series."""
    rows = (
        TaskResult.objects.filter(
            task_name__startswith=prefix,
            status__in=FINAL,
            date_done__gte=span.start,
            date_done__lt=span.end,
        )
        .values_list("task_name", "status", "queue", "worker", "exception_type")
        .annotate(n=Count("id"))
        .order_by()
    )
    return Counter(
        {
            (name, state, queue or "", worker or "", exc or ""): n
            for name, state, queue, worker, exc, n in rows
        }
    )


def history_counts(
    span: Window, alias: str, prefix: str
) -> Counter[tuple[str, str, str, str, str]]:
    return Counter(
        {
            (
                entry.key.task_name,
                entry.key.state,
                entry.key.queue,
                entry.key.worker,
                entry.key.exception_type,
            ): entry.count
            for entry in series_counts(span, alias)
            if entry.key.task_name.startswith(prefix)
        }
    )


class TestHistory:
    """Writes clear ``rolled_up``; a catch-up counts each finished task once, finally."""

    def test_every_write_makes_the_row_count_again(self, driver: Any) -> None:
        task_id, batched, sent = new_id(), new_id(), new_id()
        driver.ops.store_task_results([row(task_id, states.STARTED)])
        driver.ops.store_task_results(
            [row(batched, states.STARTED), row(new_id(), states.SUCCESS)]
        )
        now = timezone.now()
        driver.ops.store_pending_results([row(sent, states.PENDING, date_done=now)])
        catch_up(driver.alias)
        assert rolled_up(task_id)
        assert rolled_up(batched)
        assert rolled_up(sent)
        driver.ops.store_task_results([row(task_id, states.SUCCESS)])
        driver.ops.store_task_results(
            [row(batched, states.FAILURE), row(new_id(), states.SUCCESS)]
        )
        # A send time earlier than the stored one changes the task's wait.
        driver.ops.store_pending_results(
            [row(sent, states.PENDING, date_done=now - timedelta(seconds=5))]
        )
        assert not rolled_up(task_id)
        assert not rolled_up(batched)
        assert not rolled_up(sent)
        catch_up(driver.alias)
        assert rolled_up(task_id)
        assert rolled_up(batched)
        assert rolled_up(sent)

    def test_a_refused_write_leaves_the_row_counted(self, driver: Any) -> None:
        task_id = new_id()
        driver.ops.store_task_results([row(task_id, states.SUCCESS)])
        catch_up(driver.alias)
        driver.ops.store_task_results([row(task_id, states.STARTED)])  # SUCCESS stays
        assert rolled_up(task_id)

    def test_counts_equal_count_star_over_the_rows(
        self, driver: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from ...history import rollup

        monkeypatch.setattr(rollup, "CHUNK", 7)  # many chunks, as on a large table
        prefix = f"hist.{new_id()[:8]}."
        rng = random.Random(35)
        now = timezone.now()
        moved: list[tuple[str, str]] = []
        for n in range(60):
            task_id, name = new_id(), f"{prefix}{n % 3}"
            sent = now - timedelta(minutes=rng.randint(2, 170), seconds=rng.random() * 60)
            started = sent + timedelta(seconds=rng.random() * 3)
            done = started + timedelta(seconds=0.05 + rng.random() * 2)
            final = rng.choice([states.SUCCESS, states.SUCCESS, states.FAILURE, states.REVOKED])
            common = {"task_name": name, "worker": f"celery@w{n % 2}", "queue": f"q{n % 2}"}
            driver.ops.store_pending_results(
                [row(task_id, states.PENDING, date_done=sent, **common)]
            )
            driver.ops.store_task_results(
                [row(task_id, states.STARTED, date_done=started, date_started=started, **common)]
            )
            exception = "builtins.ValueError" if final == states.FAILURE else None
            driver.ops.store_task_results(
                [row(task_id, final, date_done=done, exception_type=exception, **common)]
            )
            if final == states.SUCCESS and n % 4 == 0:  # a duplicate SUCCESS write
                driver.ops.store_task_results([row(task_id, final, date_done=now, **common)])
            if final in (states.FAILURE, states.REVOKED):
                moved.append((task_id, final))
        catch_up(driver.alias)
        # Final states that change later, in another minute: FAILURE → SUCCESS (a retry
        # of the run), REVOKED → FAILURE (a revoked task that failed anyway).
        for task_id, final in moved[: len(moved) // 2 + 1]:
            later = now - timedelta(seconds=30)
            if final == states.FAILURE:
                driver.ops.store_task_results([row(task_id, states.SUCCESS, date_done=later)])
            else:
                driver.ops.store_task_results(
                    [row(task_id, states.FAILURE, date_done=later, exception_type="x.Lost")]
                )
        catch_up(driver.alias)
        for length in (timedelta(minutes=15), timedelta(hours=1), timedelta(hours=3)):
            span = window(now - length, now, now)
            assert history_counts(span, driver.alias, prefix) == raw_counts(span, prefix)
        # Deleting rows never changes the history.
        span = window(now - timedelta(hours=3), now, now)
        before = history_counts(span, driver.alias, prefix)
        TaskResult.objects.filter(task_name__startswith=prefix, status=states.SUCCESS).delete()
        catch_up(driver.alias)
        assert history_counts(span, driver.alias, prefix) == before

    def test_percentiles_are_within_two_percent_of_nearest_rank(self, driver: Any) -> None:
        name = f"hist.{new_id()[:8]}.spread"
        rng = random.Random(7)
        now = timezone.now()
        pending, finished = [], []
        for _ in range(200):
            task_id = new_id()
            sent = now - timedelta(minutes=rng.randint(2, 50))
            started = sent + timedelta(seconds=rng.lognormvariate(-1, 1.5))
            done = started + timedelta(seconds=rng.lognormvariate(0, 1))
            pending.append(row(task_id, states.PENDING, date_done=sent, task_name=name))
            finished.append(row(task_id, states.SUCCESS, date_done=done, date_started=started))
        driver.ops.store_pending_results(pending)
        driver.ops.store_task_results(finished)
        # The stored dates (a database may round them), not the ones sent.
        stored = TaskResult.objects.filter(task_name=name)
        dates = list(stored.values_list("date_created", "date_started", "date_done"))
        assert len(dates) == 200
        waits, runs = [], []
        for created, began, ended in dates:
            assert began is not None
            waits.append((began - created).total_seconds())
            runs.append((ended - began).total_seconds())
        catch_up(driver.alias)
        binned = spreads(window(now - timedelta(hours=1), now, now), driver.alias)
        for kind, values in (("wait", waits), ("run", runs)):
            exact = nearest_rank(values)
            got = sketch.percentiles(binned[(name, kind)], (0.5, 0.95, 0.99))
            for want, estimate in zip((exact.p50, exact.p95, exact.p99), got, strict=True):
                assert want is not None
                assert estimate is not None
                assert abs(estimate - want) <= sketch.ALPHA * want + 1e-9

    def test_a_row_without_a_pending_row_has_no_wait(self, driver: Any) -> None:
        name = f"hist.{new_id()[:8]}.nowait"
        started = timezone.now() - timedelta(minutes=3)
        task_id = new_id()
        driver.ops.store_task_results(
            [row(task_id, states.STARTED, date_done=started, date_started=started, task_name=name)]
        )
        driver.ops.store_task_results([row(task_id, states.SUCCESS)])
        catch_up(driver.alias)
        now = timezone.now()
        binned = spreads(window(now - timedelta(hours=1), now, now), driver.alias)
        assert (name, "wait") not in binned
        assert sum(binned[(name, "run")].values()) == 1

    def test_a_window_starts_on_its_minute(self) -> None:
        now = timezone.now()
        span = window(now - timedelta(hours=1), now, now)
        assert span.start == floor(now - timedelta(hours=1), MINUTE)
        assert span.end > now >= span.end - timedelta(minutes=1)
        assert isinstance(span.start, datetime)

    def test_a_window_starts_on_its_first_bar(self) -> None:
        now = timezone.now()
        for length, tier, bar in (
            (timedelta(hours=6), TEN_MINUTES, 600),
            (timedelta(hours=24), HOUR, 3600),
            (timedelta(days=7), QUARTER_DAY, 21_600),
        ):
            span = window(now - length, now, now)
            assert (span.start, span.bar) == (floor(now - length, tier), bar)
            assert span.end > now >= span.end - timedelta(minutes=1)

    def test_each_bar_of_the_chart_equals_count_star(self, driver: Any) -> None:
        prefix = f"hist.{new_id()[:8]}."
        rng = random.Random(11)
        now = timezone.now()
        rows = []
        for n in range(120):
            done = now - timedelta(seconds=rng.uniform(30, 7 * 86_400 - 3600))
            state = rng.choice([states.SUCCESS, states.SUCCESS, states.FAILURE])
            rows.append(row(new_id(), state, date_done=done, task_name=f"{prefix}{n % 3}"))
        driver.ops.store_task_results(rows)
        catch_up(driver.alias)
        lengths = (timedelta(hours=1), timedelta(hours=6), timedelta(days=1), timedelta(days=7))
        for length, name in itertools.product(lengths, [f"{prefix}0", f"{prefix}2"]):
            span = window(now - length, now, now)
            bars = chart(span, driver.alias, now, task_name=name)
            assert bars[0].start <= span.start
            assert bars[-1].end >= span.end
            for bar in bars:
                inside = TaskResult.objects.filter(
                    task_name=name,
                    date_done__gte=max(bar.start, span.start),
                    date_done__lt=min(bar.end, span.end),
                )
                failed = inside.filter(status=states.FAILURE).count()
                assert (bar.done, bar.failed) == (inside.count(), failed), (length, bar.start)
