"""The docs keep up with the code: every hook, setting and README command is described."""

from __future__ import annotations

import inspect
import re
from dataclasses import fields
from pathlib import Path

import pytest

from django_celery_results.conf import AppSettings
from django_celery_results.drivers import hookspecs

ROOT = Path(__file__).resolve().parents[2]
HOOKS = [
    function
    for name, function in inspect.getmembers(hookspecs, inspect.isfunction)
    if hasattr(function, "django_celery_results_spec")
]


def test_there_are_hooks() -> None:
    assert HOOKS


@pytest.mark.parametrize("hook", HOOKS, ids=lambda hook: hook.__name__)
def test_every_hook_is_documented(hook: object) -> None:
    text = (ROOT / "docs" / "hooks.md").read_text()
    name = hook.__name__  # type: ignore[attr-defined]
    assert re.search(rf"^## {name}$", text, re.MULTILINE), f"docs/hooks.md lacks '## {name}'"
    for argument in inspect.signature(hook).parameters:  # type: ignore[arg-type]
        assert f"`{argument}`" in text, f"docs/hooks.md does not describe {name}({argument})"


@pytest.mark.parametrize("key", [field.name for field in fields(AppSettings)])
def test_every_setting_is_documented(key: str) -> None:
    text = (ROOT / "docs" / "settings.md").read_text()
    assert f"| `{key}` |" in text, f"docs/settings.md has no row for {key}"


def test_readme_opens_with_the_two_commands() -> None:
    head = (ROOT / "README.md").read_text()[:2500]
    assert "make demo" in head
    assert "make test" in head
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, re.MULTILINE)
    assert re.search(r"^test:", makefile, re.MULTILINE)
