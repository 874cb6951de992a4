"""``pip install django-celery-results`` alone: the built wheel needs no database client.

The wheels are built with ``uv build`` and core's is installed into a throwaway virtualenv,
as a user's ``pip install`` would; ``django-db`` then stores and reads results on SQLite
from that installation, with nothing of this checkout on the path.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Distributions that must come only with a driver extra, never with core.
CLIENTS = {"psycopg", "psycopg-binary", "psycopg-c", "mysqlclient", "pymysql"}

#: Run inside the throwaway venv: migrate a SQLite file, store and read through django-db.
USE_IT = """
import json, sys
import django
from django.conf import settings

settings.configure(
    INSTALLED_APPS=["django_celery_results"],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": sys.argv[1]}},
    USE_TZ=True,
)
django.setup()
from celery import Celery, states
from django.core.management import call_command
from django_celery_results.drivers import driver_for_model
from django_celery_results.models import TaskResult

call_command("migrate", verbosity=0)
app = Celery("wheel", set_as_current=False)
app.conf.update(result_backend="django-db", result_extended=True)
app.backend.store_result("wheel-task", None, states.STARTED)
app.backend.store_result("wheel-task", {"answer": 42}, states.SUCCESS)
app.backend.store_result("wheel-task", None, states.STARTED)  # late: never regresses
print(json.dumps({
    "backend": type(app.backend).__module__,
    "driver": type(driver_for_model(TaskResult)).__name__,
    "result": app.AsyncResult("wheel-task").get(timeout=5),
    "status": TaskResult.objects.get(task_id="wheel-task").status,
    "module": __import__("django_celery_results").__file__,
}))
"""


def uv() -> str:
    """Return the uv that runs the tests (``uv run`` names itself in ``UV``)."""
    found = os.environ.get("UV") or shutil.which("uv")
    if not found:
        pytest.fail("uv is not on PATH: run the tests with `make test`, which installs it")
    return found


def run(*command: str | Path, cwd: Path = ROOT) -> str:
    completed = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-6000:] + completed.stderr[-4000:]
    return completed.stdout


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every workspace member's wheel, built by ``uv build`` (distribution name -> file)."""
    out = tmp_path_factory.mktemp("wheels")
    run(uv(), "build", "--all-packages", "--wheel", "--out-dir", out)
    built = {path.name.split("-")[0].replace("_", "-"): path for path in out.glob("*.whl")}
    assert set(built) == {
        "django-celery-results",
        "django-celery-results-postgres",
        "django-celery-results-mysql",
    }
    return built


@pytest.fixture(scope="module")
def core_venv(wheels: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with core's wheel installed from it alone; returns its python."""
    folder = tmp_path_factory.mktemp("venv") / "venv"
    run(uv(), "venv", "--quiet", "--python", sys.executable, folder)
    python = folder / "bin" / "python"
    run(uv(), "pip", "install", "--quiet", "--python", python, wheels["django-celery-results"])
    return python


def test_core_wheel_ships_the_app_whole(wheels: dict[str, Path]) -> None:
    names = zipfile.ZipFile(wheels["django-celery-results"]).namelist()
    package = "django_celery_results/"
    assert package + "py.typed" in names
    migrations = [n for n in names if n.startswith(package + "migrations/0")]
    source = ROOT / "packages" / "core" / "src" / "django_celery_results" / "migrations"
    assert len(migrations) == len(list(source.glob("0*.py"))) >= 15  # upstream's 14, ours
    assert any(n.endswith("locale/es/LC_MESSAGES/django.mo") for n in names)
    assert any(n.startswith(package + "testing/suite/") for n in names)


def test_core_pulls_in_no_database_client(core_venv: Path) -> None:
    listed = json.loads(run(uv(), "pip", "list", "--format", "json", "--python", core_venv))
    installed = {package["name"].lower() for package in listed}
    assert {"django-celery-results", "django", "celery", "pluggy"} <= installed
    assert not installed & CLIENTS, f"core alone installed {installed & CLIENTS}"
    assert not {name for name in installed if name.startswith("django-celery-results-")}


def test_django_db_on_sqlite_works_from_the_wheel(core_venv: Path, tmp_path: Path) -> None:
    # Run away from the checkout, so nothing of it can be imported instead of the wheel.
    output = run(core_venv, "-I", "-c", USE_IT, tmp_path / "results.sqlite3", cwd=tmp_path)
    used = json.loads(output.splitlines()[-1])
    assert used["backend"] == "django_celery_results.backends.database"
    assert used["driver"] == "GenericDriver"
    assert used["result"] == {"answer": 42}
    assert used["status"] == "SUCCESS"
    assert Path(used["module"]).is_relative_to(core_venv.parent.parent)
