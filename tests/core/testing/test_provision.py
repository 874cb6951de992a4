"""Vendor test helpers live in each driver package and are loaded for the vendor under test."""

from __future__ import annotations

import pytest

from django_celery_results.testing.provision import break_connection, load_vendor_provision


@pytest.mark.parametrize(
    ("vendor", "module"),
    [
        ("postgresql", "django_celery_results_postgres.provision"),
        ("mysql", "django_celery_results_mysql.provision"),
    ],
)
def test_a_vendors_helpers_come_from_its_driver_package(vendor: str, module: str) -> None:
    load_vendor_provision(vendor)
    assert break_connection.vendors[vendor].__module__ == module


def test_a_vendor_without_a_driver_package_keeps_the_default() -> None:
    load_vendor_provision("sqlite")
    assert "sqlite" not in break_connection.vendors
