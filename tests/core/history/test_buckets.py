"""Windows cut into whole buckets: every minute counted once."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from django_celery_results.history.buckets import (
    DAY,
    HOUR,
    MINUTE,
    QUARTER_DAY,
    TEN_MINUTES,
    TIER_SECONDS,
    cover,
    floor,
)


def minutes_of(start: datetime, end: datetime) -> set[datetime]:
    count = int((end - start).total_seconds() // 60)
    return {start + timedelta(minutes=n) for n in range(count)}


def test_a_cover_sums_each_minute_once() -> None:
    """Aligned pieces that tile the window end to end: each of its minutes in one piece."""
    rng = random.Random(3)
    base = datetime(2026, 11, 1, tzinfo=UTC)
    for _ in range(500):
        start = base + timedelta(minutes=rng.randint(0, 60 * 24 * 40))
        end = start + timedelta(minutes=rng.randint(0, 60 * 24 * 35))
        pieces = cover(start, end)
        for piece in pieces:
            assert piece.start == floor(piece.start, piece.tier)
            assert piece.end == floor(piece.end, piece.tier)
            assert piece.start < piece.end
        edges = [start] + [edge for piece in pieces for edge in (piece.start, piece.end)] + [end]
        assert edges[0::2] == edges[1::2]  # each piece starts where the one before ended


def test_a_short_cover_holds_every_minute_once() -> None:
    rng = random.Random(4)
    base = datetime(2026, 11, 1, tzinfo=UTC)
    for _ in range(50):
        start = base + timedelta(minutes=rng.randint(0, 60 * 24 * 40))
        end = start + timedelta(minutes=rng.randint(0, 60 * 24 * 3))
        covered: list[datetime] = []
        for piece in cover(start, end):
            covered.extend(minutes_of(piece.start, piece.end))
        assert sorted(covered) == sorted(minutes_of(start, end))


def test_the_middle_is_coarse() -> None:
    start = datetime(2026, 11, 1, 22, 27, tzinfo=UTC)
    pieces = cover(start, start + timedelta(days=3))
    tiers = [MINUTE, TEN_MINUTES, HOUR, DAY, QUARTER_DAY, HOUR, TEN_MINUTES, MINUTE]
    assert [piece.tier for piece in pieces] == tiers
    assert [(piece.start.hour, piece.start.minute) for piece in pieces] == [
        (22, 27), (22, 30), (23, 0), (0, 0), (0, 0), (18, 0), (22, 0), (22, 20),
    ]  # fmt: skip
    assert TIER_SECONDS[DAY] == 86_400
    assert TIER_SECONDS[TEN_MINUTES] == 600


def test_a_cap_on_the_tier_keeps_buckets_small() -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    assert {piece.tier for piece in cover(start, start + timedelta(days=3), top=HOUR)} == {HOUR}
