"""A driver's ``from django_celery_results.testing.suite import *`` takes the suite, only."""

from __future__ import annotations

import inspect

import pytest

from django_celery_results.testing import suite


def collected_or_needed(module: object) -> set[str]:
    """Names pytest collects from ``module`` (Test* classes, test_* functions), and fixtures."""
    names = set()
    for name, value in vars(module).items():
        if getattr(value, "__module__", None) != module.__name__:  # type: ignore[attr-defined]
            continue  # imported, not defined here
        test = (inspect.isclass(value) and name.startswith("Test")) or name.startswith("test_")
        if test or type(value).__name__ == "FixtureFunctionDefinition":
            names.add(name)
    return names


@pytest.mark.parametrize("module", suite.MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[1])
def test_each_module_exports_its_tests_and_fixtures(module: object) -> None:
    assert set(module.__all__) == collected_or_needed(module)  # type: ignore[attr-defined]


def test_the_package_exports_every_module_and_nothing_else() -> None:
    exported = {name for module in suite.MODULES for name in module.__all__}
    assert set(suite.__all__) == exported
    assert len(suite.__all__) == len(exported), "two modules export the same name"
    namespace: dict[str, object] = {}
    exec("from django_celery_results.testing.suite import *", namespace)
    assert set(namespace) - {"__builtins__"} == exported
