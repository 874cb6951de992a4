"""The benchmark's smoke tests, shared between CI's two version legs (``DCR_BENCH_SHARE``).

The benchmark is a tool run on one Python, not part of what each version leg proves, and
its smoke tests are a seventh of a leg's time. ``.ci/run`` gives each leg a share: with
``DCR_BENCH_SHARE=1/2`` a run takes the first of every two, with ``2/2`` the second.
Unset (``make test``), every one runs.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip the smoke tests another leg runs, saying so."""
    share = os.environ.get("DCR_BENCH_SHARE")
    if not share:
        return
    mine, legs = (int(part) for part in share.split("/"))
    ours = [item for item in items if Path(item.path).resolve().parent == HERE]
    for index, item in enumerate(ours):
        if index % legs != mine - 1:
            reason = f"bench smoke: .ci/run's other version leg runs it (DCR_BENCH_SHARE={share})"
            item.add_marker(pytest.mark.skip(reason=reason))
