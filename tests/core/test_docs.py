"""The docs keep up with the code: every hook, setting and README command is described."""

from __future__ import annotations

import ast
import inspect
import re
from dataclasses import fields
from pathlib import Path

import pytest

from django_celery_results.conf import AppSettings
from django_celery_results.drivers import (
    BaseOperations,
    GenericOperations,
    SQLOperations,
    hookspecs,
)

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


def ci_version_legs() -> list[str]:
    """Return the Python versions ``.ci/run`` runs the suite on (``make test PYTHON=X``)."""
    text = (ROOT / ".ci/run").read_text()
    return re.findall(r"^leg \d+ \d+ \d+ \d+/\d+ make test PYTHON=(\d+\.\d+) &$", text, re.M)


def test_ci_runs_both_version_legs_with_the_readmes_command() -> None:
    assert ci_version_legs() == ["3.11", "3.13"]
    assert "./scripts/fresh-demo" in (ROOT / ".ci/run").read_text()


@pytest.mark.parametrize("package", ["core", "driver-postgres", "driver-mysql"])
def test_classifiers_say_exactly_what_ci_tests(package: str) -> None:
    """Each Python leg of CI, and the Django the lock gives that Python, are classified."""
    import tomllib

    project = tomllib.loads((ROOT / "packages" / package / "pyproject.toml").read_text())
    classifiers = project["project"]["classifiers"]
    pythons = {c.rsplit(" :: ", 1)[1] for c in classifiers if re.match(r"Prog.* :: 3\.\d+$", c)}
    djangos = {c.rsplit(" :: ", 1)[1] for c in classifiers if re.match(r"Frame.* :: \d", c)}
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    locked = [p for p in lock["package"] if p["name"] == "django"]
    # Django 5.2 for Python < 3.12 and 6.1 for the rest: the lock's resolution markers say so.
    by_python = {
        leg: next(
            p["version"]
            for p in locked
            if any(f"python_full_version {'<' if leg < '3.12' else '>='} '3.12'" in m
                   for m in p.get("resolution-markers", []))
        )
        for leg in ci_version_legs()
    }  # fmt: skip
    assert pythons == set(ci_version_legs())
    assert djangos == {".".join(v.split(".")[:2]) for v in by_python.values()}


def public_methods(cls: type) -> list[str]:
    return [
        name
        for name, value in vars(cls).items()
        if not name.startswith("_") and inspect.isfunction(value)
    ]


@pytest.mark.parametrize("name", public_methods(BaseOperations))
def test_every_operation_has_its_row_in_writing_a_driver(name: str) -> None:
    text = (ROOT / "docs" / "writing-a-driver.md").read_text()
    assert re.search(rf"^\| (.* / )?`{name}\(", text, re.MULTILINE), (
        f"docs/writing-a-driver.md has no row for the operation {name}()"
    )


@pytest.mark.parametrize("name", public_methods(GenericOperations))
def test_every_public_helper_of_the_generic_driver_is_documented(name: str) -> None:
    if name in public_methods(BaseOperations):
        return  # an operation: its row is checked above
    text = (ROOT / "docs" / "writing-a-driver.md").read_text()
    assert f"{name}(" in text, f"docs/writing-a-driver.md does not mention {name}()"


@pytest.mark.parametrize(
    "name",
    [
        name
        for name in public_methods(SQLOperations)
        if name not in public_methods(BaseOperations) + public_methods(GenericOperations)
    ],
)
def test_every_fragment_has_its_row_in_writing_a_driver(name: str) -> None:
    text = (ROOT / "docs" / "writing-a-driver.md").read_text()
    assert re.search(rf"^\| (.* / )?`{name}\(", text, re.MULTILINE), (
        f"docs/writing-a-driver.md has no row for the fragment {name}()"
    )


def _documented(vendor: str) -> dict[str, str]:
    """The ``Code | Retried`` rows of docs/operating.md's table for ``vendor``."""
    text = (ROOT / "docs" / "operating.md").read_text()
    match = re.search(
        rf"<!-- transient-errors:{vendor} -->\n(.*?)<!-- /transient-errors:{vendor} -->",
        text,
        re.DOTALL,
    )
    assert match, f"docs/operating.md has no table for {vendor}"
    rows = re.findall(r"^\| `([0-9A-Z]+)` \| (yes|no) \| (.+) \|$", match.group(1), re.MULTILINE)
    return {code: f"{retried}: {what}" for code, retried, what in rows}


def test_the_postgres_retry_table_is_the_code() -> None:
    from django_celery_results_postgres import operations

    expected = {code: f"yes: {what}" for code, what in operations.TRANSIENT_SQLSTATES.items()}
    expected.update(
        {code: f"no: {what}" for code, what in operations.NOT_RETRIED_SQLSTATES.items()}
    )
    assert _documented("postgresql") == expected


def test_the_mysql_retry_table_is_the_code() -> None:
    from django_celery_results_mysql import operations

    expected = {str(code): f"yes: {what}" for code, what in operations.TRANSIENT_CODES.items()}
    expected.update(
        {str(code): f"no: {what}" for code, what in operations.NOT_RETRIED_CODES.items()}
    )
    assert _documented("mysql") == expected


def documented_modules() -> list[tuple[str, str]]:
    """Every module the architecture's module map lists, with its one-line docstring."""
    rows: list[tuple[str, Path]] = []
    core = ROOT / "packages" / "core" / "src" / "django_celery_results"
    for path in sorted(core.glob("**/*.py")):
        name = path.relative_to(core).as_posix()
        if name.startswith(("migrations/", "testing/suite/")) or name in (
            "management/__init__.py",
            "management/commands/__init__.py",
        ):
            continue
        rows.append((name, path))
    for package in ("django_celery_results_postgres", "django_celery_results_mysql"):
        driver = package.replace("django_celery_results_", "driver-")
        for path in sorted((ROOT / "packages" / driver / "src" / package).glob("*.py")):
            rows.append((f"{package}/{path.name}", path))
    return [(name, first_docstring_line(path)) for name, path in rows]


def first_docstring_line(path: Path) -> str:
    docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
    return docstring.splitlines()[0] if docstring else ""


@pytest.mark.parametrize(("module", "line"), documented_modules(), ids=lambda v: str(v)[:40])
def test_every_module_is_on_the_module_map_with_its_docstring(module: str, line: str) -> None:
    assert line, f"{module} has no docstring"
    text = (ROOT / "docs" / "architecture.md").read_text()
    assert f"| `{module}` | {line.replace('|', chr(92) + '|')} |" in text, (
        f"docs/architecture.md's module map lacks {module} (or its docstring changed)"
    )
