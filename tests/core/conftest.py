"""Core's tests run every database through the generic ORM driver.

The vendor drivers of this workspace are installed too; their own test folders run the
same conformance suite through them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.test import override_settings

from django_celery_results.drivers.manager import reset

VENDOR_DRIVERS = ["postgresql", "mysql"]


@pytest.fixture(autouse=True)
def generic_driver_only() -> Iterator[None]:
    """Block the vendor drivers, so the generic one serves every alias."""
    with override_settings(DJANGO_CELERY_RESULTS={"DISABLED_DRIVERS": VENDOR_DRIVERS}):
        reset()
        try:
            yield
        finally:
            reset()
