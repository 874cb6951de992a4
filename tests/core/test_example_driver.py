"""The out-of-tree driver of ``docs/writing-a-driver.md`` passes the conformance suite.

``docs/examples/django-celery-results-sqlite`` is installed with core into a throwaway
virtualenv, as its author would, and its own tests run there: the suite, through its
entry point, against the driver (not the generic one) on SQLite.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import celery
import django
import pytest

from .test_wheel import run, uv

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "django-celery-results-sqlite"


def test_the_example_driver_passes_the_suite(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    python = venv / "bin" / "python"
    run(uv(), "venv", "--quiet", "--python", sys.executable, venv)
    pins = [f"django=={django.__version__}", f"celery=={celery.__version__}"]
    pins += [f"pytest=={pytest.__version__}", "pytest-django"]
    run(uv(), "pip", "install", "--quiet", "--python", python, ROOT / "packages" / "core",
        EXAMPLE, *pins)  # fmt: skip
    tests = shutil.copytree(EXAMPLE / "tests", tmp_path / "tests")
    out = run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--ds=settings", cwd=tests)
    passed = re.search(r"(\d+) passed", out)
    assert passed is not None, out[-2000:]
    assert int(passed.group(1)) > 150, out[-2000:]  # the whole suite, not a stray module
    assert " failed" not in out, out[-2000:]
    assert " error" not in out, out[-2000:]


def test_the_example_is_as_small_as_the_docs_say() -> None:
    operations = EXAMPLE / "src" / "django_celery_results_sqlite" / "operations.py"
    lines = len(operations.read_text().splitlines())
    doc = (ROOT / "docs" / "writing-a-driver.md").read_text()
    assert f"`operations.py` is {lines} lines" in doc
