"""Core's tests run every database through the generic ORM driver.

The vendor drivers of this workspace are installed too; their own test folders run the
same conformance suite through them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from celery import Celery, current_app
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


@pytest.fixture
def app() -> Iterator[Celery]:
    """The current Celery app while the test runs, storing results with ``django-db``."""
    previous = current_app._get_current_object()
    app = Celery("core-tests", set_as_current=True)
    app.conf.update(
        result_backend="django-db",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        result_extended=True,
    )
    try:
        yield app
    finally:
        previous.set_current()
        app.close()
