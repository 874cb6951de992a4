"""Test-run wide fixtures and the report of which database legs run."""

from __future__ import annotations

import pytest
from django.conf import settings


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Say which databases this run covers, and how to start the ones it skips."""
    lines = [f"database legs: {', '.join(settings.DATABASES)}"]
    for alias, reason in settings.CONFORMANCE_SKIPPED_DATABASES.items():
        lines.append(f"skipping {alias}: {reason}")
    return lines
