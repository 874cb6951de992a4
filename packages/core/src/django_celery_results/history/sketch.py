"""Duration distributions as logarithmic bins: mergeable, and within 2% at any percentile.

A duration of ``x`` seconds falls in bin ``ceil(log(x) / log(GAMMA))``; every duration of a
bin is within :data:`ALPHA` of the bin's value, so a percentile read from bin counts by
nearest rank is within ``ALPHA`` of the exact one over the raw rows (DDSketch's bound).
Zero and negative durations (clocks apart) share the bin :data:`ZERO`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

#: The relative accuracy of every percentile.
ALPHA = 0.02
GAMMA = (1 + ALPHA) / (1 - ALPHA)
_LOG_GAMMA = math.log(GAMMA)
#: The bin of durations of zero or less.
ZERO = "z"

Bins = dict[str, int]


def bin_of(seconds: float) -> str:
    """The bin a duration falls in."""
    if seconds <= 0:
        return ZERO
    return str(math.ceil(math.log(seconds) / _LOG_GAMMA))


def value_of(name: str) -> float:
    """The duration a bin stands for (within :data:`ALPHA` of each of its durations)."""
    if name == ZERO:
        return 0.0
    return 2 * GAMMA ** int(name) / (GAMMA + 1)


def merge(into: Bins, bins: Mapping[str, int], sign: int = 1) -> None:
    """Add (or with ``sign=-1`` take away) ``bins`` to ``into``, dropping emptied bins."""
    for name, count in bins.items():
        total = into.get(name, 0) + sign * count
        if total > 0:
            into[name] = total
        else:
            into.pop(name, None)


def ordered(bins: Mapping[str, int]) -> list[tuple[float, int]]:
    """The bins as ``(value, count)``, shortest first."""
    return sorted((value_of(name), count) for name, count in bins.items() if count > 0)


def percentile(bins: Mapping[str, int], fraction: float) -> float | None:
    """The nearest-rank percentile ``fraction`` of the binned durations; None without any."""
    return percentiles(bins, (fraction,))[0]


def percentiles(bins: Mapping[str, int], fractions: Iterable[float]) -> list[float | None]:
    """Several nearest-rank percentiles at once, as ``stats.nearest_rank`` ranks them."""
    values = ordered(bins)
    total = sum(count for _value, count in values)
    answers: list[float | None] = []
    for fraction in fractions:
        if not total:
            answers.append(None)
            continue
        rank = max(math.ceil(fraction * total) - 1, 0)
        seen = 0
        for value, count in values:
            seen += count
            if seen > rank:
                answers.append(value)
                break
    return answers
