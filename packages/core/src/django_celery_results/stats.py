"""Per-task-name statistics: counts by state, and waiting and processing time spreads.

``TaskStats`` is what the dashboard and ``manage.py celery_results_stats`` show, read
from the history (``report``). ``nearest_rank`` is the exact percentile the history's
spreads are measured against.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from .states import TERMINAL_STATES

#: The percentiles reported, as fractions.
PERCENTILES = (0.5, 0.95, 0.99)


@dataclass
class Spread:
    """Percentiles and maximum of one duration, in seconds (``None`` without data)."""

    p50: float | None = None
    p95: float | None = None
    max: float | None = None
    p99: float | None = None
    #: How many durations were measured (0: none could be, see the page's note).
    count: int = 0


@dataclass
class TaskStats:
    """What one task name did in the window."""

    task_name: str
    states: dict[str, int] = field(default_factory=dict)
    waiting: Spread = field(default_factory=Spread)
    processing: Spread = field(default_factory=Spread)

    @property
    def total(self) -> int:
        """Rows of this task name in the window."""
        return sum(self.states.values())

    @property
    def failure_rate(self) -> float | None:
        """FAILURE rows over finished rows (SUCCESS, FAILURE, REVOKED); None if none."""
        return failure_rate(self.states)

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {**asdict(self), "total": self.total, "failure_rate": self.failure_rate}


def failure_rate(states: dict[str, int]) -> float | None:
    """FAILURE rows over finished rows among ``states``' counts; None when none finished."""
    finished = sum(n for state, n in states.items() if state in TERMINAL_STATES)
    return states.get("FAILURE", 0) / finished if finished else None


def nearest_rank(values: list[float]) -> Spread:
    """The :data:`PERCENTILES` of ``values`` by nearest rank, and their maximum."""
    if not values:
        return Spread()
    ordered = sorted(values)
    spread = Spread(max=ordered[-1], count=len(ordered))
    for fraction in PERCENTILES:
        rank = max(math.ceil(fraction * len(ordered)) - 1, 0)
        setattr(spread, f"p{round(fraction * 100)}", ordered[rank])
    return spread
