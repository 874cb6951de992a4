"""The history's ten-minute and quarter-day buckets, summed from the buckets already counted.

Data only, on our own tables: a database counted before these tiers existed gets their
buckets here (ten minutes from its minutes, kept 8 days; quarter days from its hours), so
every window stays exact.
"""

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

from django.db import migrations

MINUTE, HOUR, TEN_MINUTES, QUARTER_DAY = 0, 1, 3, 4
#: Each new tier, the tier it is summed from, and its buckets' length in seconds.
NEW_TIERS = ((TEN_MINUTES, MINUTE, 600), (QUARTER_DAY, HOUR, 21_600))
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
BATCH = 2_000


def floor(bucket: datetime, seconds: int) -> datetime:
    return EPOCH + timedelta(seconds=int((bucket - EPOCH).total_seconds() // seconds) * seconds)


def empty_tiers(apps: Any, schema_editor: Any, name: str) -> Iterator[tuple[Any, int, int, int]]:
    """``name``'s table, then each new tier it has no bucket of, its source and length."""
    model = apps.get_model("django_celery_results", name)
    table = model._default_manager.db_manager(schema_editor.connection.alias)
    for tier, source, seconds in NEW_TIERS:
        if not table.filter(tier=tier).exists():
            yield table, tier, source, seconds


def sum_counts(apps: Any, schema_editor: Any) -> None:
    for table, tier, source, seconds in empty_tiers(apps, schema_editor, "HistoryCount"):
        model = table.model
        summed: dict[tuple[datetime, int], list[Any]] = {}
        finer = table.filter(tier=source).order_by().values_list(
            "bucket", "series_id", "count", "first_done", "last_done", "example"
        )
        for bucket, series, count, first, last, example in finer.iterator(chunk_size=BATCH):
            found = summed.setdefault((floor(bucket, seconds), series), [0, first, last, example])
            found[0] += count
            if first < found[1]:
                found[1] = first
            if last >= found[2]:
                found[2], found[3] = last, example
        table.bulk_create(
            [
                model(tier=tier, bucket=bucket, series_id=series, count=count,
                      first_done=first, last_done=last, example=example)
                for (bucket, series), (count, first, last, example) in summed.items()
            ],
            batch_size=BATCH,
        )  # fmt: skip


def sum_spreads(apps: Any, schema_editor: Any) -> None:
    for table, tier, source, seconds in empty_tiers(apps, schema_editor, "HistorySpread"):
        model = table.model
        summed: dict[tuple[datetime, str], dict[str, dict[str, int]]] = {}
        finer = table.filter(tier=source).order_by().values_list("bucket", "task_name", "bins")
        for bucket, name, stored in finer.iterator(chunk_size=BATCH):
            kinds = summed.setdefault((floor(bucket, seconds), name), {})
            for kind, bins in json.loads(stored).items():
                into = kinds.setdefault(kind, {})
                for key, count in bins.items():
                    into[key] = into.get(key, 0) + count
        table.bulk_create(
            [
                model(tier=tier, bucket=bucket, task_name=name, bins=json.dumps(kinds))
                for (bucket, name), kinds in summed.items()
            ],
            batch_size=BATCH,
        )


class Migration(migrations.Migration):

    dependencies = [
        ('django_celery_results', '0019_history_backlog'),
    ]

    operations = [
        migrations.RunPython(sum_counts, migrations.RunPython.noop, elidable=True),
        migrations.RunPython(sum_spreads, migrations.RunPython.noop, elidable=True),
    ]
