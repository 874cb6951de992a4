"""Migrations: upstream's 14 names, no pending model changes, and a full round trip."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connections
from django.test import override_settings

from django_celery_results import migrations

UPSTREAM_NAMES = [
    "0001_initial",
    "0002_add_task_name_args_kwargs",
    "0003_auto_20181106_1101",
    "0004_auto_20190516_0412",
    "0005_taskresult_worker",
    "0006_taskresult_date_created",
    "0007_remove_taskresult_hidden",
    "0008_chordcounter",
    "0009_groupresult",
    "0010_remove_duplicate_indices",
    "0011_taskresult_periodic_task_name",
    "0012_taskresult_date_started",
    "0013_taskresult_django_cele_periodi_1993cf_idx",
    "0014_alter_taskresult_status",
]


def migration_files() -> list[str]:
    folder = Path(migrations.__file__).parent
    return sorted(p.stem for p in folder.glob("0*.py"))


def test_upstream_names() -> None:
    """New migrations start at 0015; the first 14 are upstream's, name for name."""
    assert migration_files()[:14] == UPSTREAM_NAMES


def test_no_duplicate_numbers() -> None:
    numbers = [name[:4] for name in migration_files()]
    assert len(numbers) == len(set(numbers))


def makemigrations_check() -> None:
    output = StringIO()
    # --check exits non-zero (SystemExit) when the models have changes not in a migration.
    call_command(
        "makemigrations", "django_celery_results", check=True, dry_run=True, stdout=output
    )
    assert "No changes detected" in output.getvalue()


# makemigrations checks the migration history of every database alias.
@pytest.mark.django_db(databases="__all__")
def test_models_match_migrations() -> None:
    makemigrations_check()


@pytest.mark.django_db(databases="__all__")
@override_settings(DEFAULT_AUTO_FIELD="django.db.models.BigAutoField")
def test_models_match_migrations_with_big_auto_field() -> None:
    """The primary keys stay AutoField: the app config pins default_auto_field."""
    makemigrations_check()


@pytest.mark.django_db(transaction=True)
def test_migrate_to_zero_and_back() -> None:
    tables = {"taskresult", "groupresult", "chordcounter"}
    call_command("migrate", "django_celery_results", "zero", verbosity=0)
    existing = set(connections["default"].introspection.table_names())
    assert not {f"django_celery_results_{t}" for t in tables} & existing
    call_command("migrate", "django_celery_results", "0011", verbosity=0)
    call_command("migrate", "django_celery_results", verbosity=0)
    existing = set(connections["default"].introspection.table_names())
    assert {f"django_celery_results_{t}" for t in tables} <= existing


@pytest.mark.django_db(transaction=True)
def test_the_new_tiers_are_summed_from_the_counted_buckets() -> None:
    """0020: a database counted before ten minutes and quarter days were tiers gets them."""
    from datetime import UTC, datetime

    from django_celery_results.history.buckets import HOUR, MINUTE, QUARTER_DAY, TEN_MINUTES
    from django_celery_results.models import HistoryCount, HistorySeries, HistorySpread

    call_command("migrate", "django_celery_results", "0019", verbosity=0)
    series = HistorySeries.objects.create(key="k", task_name="t", state="SUCCESS")
    for tier, hour, minute, count in (
        (MINUTE, 5, 1, 2), (MINUTE, 5, 4, 3), (MINUTE, 5, 12, 5),
        (HOUR, 1, 0, 7), (HOUR, 5, 0, 10), (HOUR, 6, 0, 1),
    ):  # fmt: skip
        at = datetime(2026, 12, 7, hour, minute, tzinfo=UTC)
        HistoryCount.objects.create(
            tier=tier, bucket=at, series=series, count=count,
            first_done=at, last_done=at, example=f"id-{hour}-{minute}",
        )  # fmt: skip
        HistorySpread.objects.create(
            tier=tier, bucket=at, task_name="t", bins=f'{{"run": {{"7": {count}}}}}'
        )
    call_command("migrate", "django_celery_results", verbosity=0)
    tens = HistoryCount.objects.filter(tier=TEN_MINUTES).order_by("bucket")
    assert [(row.bucket.minute, row.count, row.example) for row in tens] == [
        (0, 5, "id-5-4"),
        (10, 5, "id-5-12"),
    ]
    quarters = HistoryCount.objects.filter(tier=QUARTER_DAY).order_by("bucket")
    assert [(row.bucket.hour, row.count, row.example) for row in quarters] == [
        (0, 17, "id-5-0"),
        (6, 1, "id-6-0"),
    ]
    spreads = HistorySpread.objects.filter(tier=TEN_MINUTES).order_by("bucket")
    assert [row.bins for row in spreads] == ['{"run": {"7": 5}}', '{"run": {"7": 5}}']
    spreads = HistorySpread.objects.filter(tier=QUARTER_DAY).order_by("bucket")
    assert [row.bins for row in spreads] == ['{"run": {"7": 17}}', '{"run": {"7": 1}}']
