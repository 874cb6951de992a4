"""The history's time buckets (a minute to a day, in UTC), and windows cut into them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

#: Tier numbers, as stored (ten minutes and quarter days came last, hence 3 and 4); a
#: tier's buckets are this many seconds long. Each length is one the dashboard's chart
#: draws a bar of, so a bar is always one bucket.
MINUTE, HOUR, DAY, TEN_MINUTES, QUARTER_DAY = 0, 1, 2, 3, 4
TIER_SECONDS = {MINUTE: 60, TEN_MINUTES: 600, HOUR: 3600, QUARTER_DAY: 21_600, DAY: 86_400}
#: Finest first: a window is cut into the coarsest that fit, finer ones at its edges.
TIERS = (MINUTE, TEN_MINUTES, HOUR, QUARTER_DAY, DAY)
#: Minute and ten-minute buckets are kept this long; the others ``HISTORY_RETENTION``.
MINUTE_RETENTION = timedelta(days=8)
SHORT_TIERS = (MINUTE, TEN_MINUTES)
LONG_TIERS = (HOUR, QUARTER_DAY, DAY)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def floor(moment: datetime, tier: int) -> datetime:
    """The start of the bucket of ``tier`` that holds ``moment``."""
    seconds = int((moment - EPOCH).total_seconds() // TIER_SECONDS[tier]) * TIER_SECONDS[tier]
    return EPOCH + timedelta(seconds=seconds)


def ceil(moment: datetime, tier: int) -> datetime:
    """The start of the first bucket of ``tier`` that begins at or after ``moment``."""
    start = floor(moment, tier)
    return start if start == moment else start + timedelta(seconds=TIER_SECONDS[tier])


def minute_number(moment: datetime) -> int:
    """Minutes since the epoch: a row's minute bucket, as its history mark stores it."""
    return int((moment - EPOCH).total_seconds() // 60)


def from_minute_number(number: int) -> datetime:
    """The start of minute bucket ``number``."""
    return EPOCH + timedelta(minutes=number)


@dataclass(frozen=True)
class Piece:
    """Whole buckets of one tier, from ``start`` (included) to ``end`` (excluded)."""

    tier: int
    start: datetime
    end: datetime


def cover(start: datetime, end: datetime, top: int = DAY) -> list[Piece]:
    """Cut ``start`` to ``end`` (minute-aligned) into the fewest whole buckets, up to tier ``top``.

    The coarsest buckets fill the middle; finer ones the edges. Summing the buckets of the
    pieces counts each minute of the window exactly once.
    """
    if start >= end:
        return []
    if top == MINUTE:
        return [Piece(MINUTE, start, end)]
    finer = TIERS[TIERS.index(top) - 1]
    first, last = ceil(start, top), floor(end, top)
    if first >= last:
        return cover(start, end, finer)
    return [*cover(start, first, finer), Piece(top, first, last), *cover(last, end, finer)]
