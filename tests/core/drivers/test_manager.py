"""The plugin manager: entry points, blocked drivers, misconfigured plugins, get_driver."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pluggy
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.test import override_settings

from django_celery_results.drivers import GenericDriver, get_driver
from django_celery_results.drivers.manager import (
    ENTRY_POINT_GROUP,
    get_plugin_manager,
    registered_drivers,
    reset,
)


def install_plugin(tmp_path: Path, name: str, vendor: str, hooks_source: str) -> None:
    """Put a real distribution with a driver entry point on sys.path."""
    package = tmp_path / name
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "hooks.py").write_text(textwrap.dedent(hooks_source))
    dist_info = tmp_path / f"{name}-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\n{vendor} = {name}.hooks\n"
    )


DRIVER_SOURCE = """
    from django_celery_results.drivers import GenericDriver, hookimpl

    class PluginDriver(GenericDriver):
        vendor = "sqlite"
        display_name = "test plugin"

    @hookimpl
    def register_drivers(register):
        register(PluginDriver)
"""


@pytest.fixture
def plugin_path(tmp_path: Path) -> Iterator[Path]:
    """A sys.path entry for test distributions; the manager is rebuilt around the test."""
    sys.path.insert(0, str(tmp_path))
    reset()
    try:
        yield tmp_path
    finally:
        sys.path.remove(str(tmp_path))
        for module in [m for m in sys.modules if m.startswith("dcr_test_plugin")]:
            del sys.modules[module]
        reset()


def test_generic_driver_serves_unknown_vendors() -> None:
    driver = get_driver(connections["default"])
    assert isinstance(driver, GenericDriver)
    assert driver.alias == "default"
    assert get_driver(connections["default"]) is driver


def test_entry_point_driver_is_used(plugin_path: Path) -> None:
    install_plugin(plugin_path, "dcr_test_plugin_a", "sqlite", DRIVER_SOURCE)
    driver = get_driver(connections["default"])
    assert type(driver).__name__ == "PluginDriver"
    assert registered_drivers()["sqlite"] is type(driver)


def test_disabled_driver_is_not_loaded(plugin_path: Path) -> None:
    install_plugin(plugin_path, "dcr_test_plugin_b", "sqlite", DRIVER_SOURCE)
    with override_settings(DJANGO_CELERY_RESULTS={"DISABLED_DRIVERS": ["sqlite"]}):
        reset()
        assert type(get_driver(connections["default"])) is GenericDriver


def test_two_drivers_for_one_vendor(plugin_path: Path) -> None:
    install_plugin(plugin_path, "dcr_test_plugin_c", "sqlite", DRIVER_SOURCE)
    install_plugin(plugin_path, "dcr_test_plugin_d", "sqlite-again", DRIVER_SOURCE)
    with pytest.raises(ImproperlyConfigured, match="Two drivers registered for vendor 'sqlite'"):
        registered_drivers()


def test_registering_something_else(plugin_path: Path) -> None:
    source = """
        from django_celery_results.drivers import hookimpl

        @hookimpl
        def register_drivers(register):
            register(object())
    """
    install_plugin(plugin_path, "dcr_test_plugin_e", "odd", source)
    with pytest.raises(ImproperlyConfigured, match="register a BaseDriver subclass"):
        registered_drivers()


def test_misspelt_hook_is_an_error(plugin_path: Path) -> None:
    source = """
        from django_celery_results.drivers import hookimpl

        @hookimpl
        def register_driver(register):
            pass
    """
    install_plugin(plugin_path, "dcr_test_plugin_f", "typo", source)
    with pytest.raises(pluggy.PluginValidationError, match="register_driver"):
        get_plugin_manager()
