"""Test-run wide fixtures and the report of which database legs run."""

from __future__ import annotations

import sys

import celery
import django
import pytest
from django.conf import settings


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Say which versions and databases this run covers, and how to start skipped ones."""
    python = ".".join(map(str, sys.version_info[:3]))
    lines = [
        f"versions: Python {python}, Django {django.__version__}, Celery {celery.__version__}",
        f"database legs: {', '.join(settings.DATABASES)}",
    ]
    for alias, reason in settings.CONFORMANCE_SKIPPED_DATABASES.items():
        lines.append(f"skipping {alias}: {reason}")
    return lines
