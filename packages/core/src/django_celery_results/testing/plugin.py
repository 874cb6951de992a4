"""pytest plugin of the conformance suite: one run per database alias, fixtures, markers.

Every test that asks for ``db_alias`` (directly or through ``driver``, ``backend`` …) runs
once per database alias in ``DATABASES`` (test mirrors excluded), with our models routed
to that alias by :class:`~django_celery_results.testing.router.AliasRouter`, and with
committed transactions (``django_db(transaction=True)``), because the suite checks what
other connections, threads and processes see.

Aliases named in the test setting ``CONFORMANCE_SKIPPED_DATABASES`` (alias -> reason)
are reported as skipped with that reason, e.g. how to start the server. A test module
that sets ``CONFORMANCE_ALIASES = [...]`` runs on those aliases only (a driver's tests
run where its database is).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery
from django.conf import settings
from django.db import connections
from django.test import override_settings

from ..drivers import BaseDriver, get_driver
from .router import use_alias

SKIPPED_SETTING = "CONFORMANCE_SKIPPED_DATABASES"


def pytest_configure(config: pytest.Config) -> None:
    """Declare the suite's markers."""
    config.addinivalue_line(
        "markers",
        "requires_feature(name, ...): skip unless the driver's features.<name> are all true",
    )


def tested_aliases() -> list[str]:
    """Return the database aliases the suite runs on: every alias that is not a mirror."""
    return [
        alias
        for alias, config in settings.DATABASES.items()
        if not config.get("TEST", {}).get("MIRROR")
    ]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run each test that uses ``db_alias`` once per alias (plus skipped ones, with reasons)."""
    if "db_alias" not in metafunc.fixturenames:
        return
    wanted = getattr(metafunc.module, "CONFORMANCE_ALIASES", None)
    skipped: dict[str, str] = getattr(settings, SKIPPED_SETTING, {})
    params = [
        pytest.param(alias, id=alias)
        for alias in tested_aliases()
        if wanted is None or alias in wanted
    ]
    params += [
        pytest.param(alias, id=alias, marks=pytest.mark.skip(reason=reason))
        for alias, reason in skipped.items()
        if wanted is None or alias in wanted
    ]
    metafunc.parametrize("db_alias", params, indirect=True)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give each parametrized test committed-transaction access to its own alias only."""
    skipped = getattr(settings, SKIPPED_SETTING, {})
    for item in items:
        callspec = getattr(item, "callspec", None)
        alias = callspec.params.get("db_alias") if callspec else None
        if alias is None or alias in skipped or item.get_closest_marker("django_db"):
            continue
        item.add_marker(pytest.mark.django_db(databases=[alias], transaction=True))


@pytest.fixture
def db_alias(request: pytest.FixtureRequest) -> Iterator[str]:
    """The database alias under test; our models are routed to it while the test runs."""
    alias: str = request.param
    use_alias(alias)
    try:
        yield alias
    finally:
        use_alias(None)


@pytest.fixture
def driver(db_alias: str) -> BaseDriver:
    """The driver serving the alias under test."""
    return get_driver(connections[db_alias])


@pytest.fixture(autouse=True)
def _requires_feature(request: pytest.FixtureRequest) -> None:
    marker = request.node.get_closest_marker("requires_feature")
    if marker is None:
        return
    features = request.getfixturevalue("driver").features
    missing = [name for name in marker.args if not getattr(features, name)]
    if missing:
        pytest.skip(f"{type(features).__name__} lacks {', '.join(missing)}")


@pytest.fixture
def result_app_config() -> dict[str, Any]:
    """Celery settings of :func:`result_app`; override the fixture to change them."""
    return {
        "result_backend": "django-db",
        "result_extended": True,
        "result_serializer": "json",
        "accept_content": ["json", "pickle"],
        "result_accept_content": ["json", "pickle"],
        "result_expires": 3600,
    }


@pytest.fixture
def result_app(result_app_config: dict[str, Any]) -> Iterator[Celery]:
    """A Celery app whose result backend is ``django-db``."""
    app = Celery("conformance", set_as_current=False)
    app.conf.update(result_app_config)
    try:
        yield app
    finally:
        app.close()


@pytest.fixture
def backend(result_app: Celery, db_alias: str) -> Any:
    """The ``django-db`` result backend, writing to the alias under test."""
    return result_app.backend


@pytest.fixture
def sender(result_app: Celery, backend: Any) -> Iterator[Celery]:
    """``result_app`` as the current app with ``TRACK_PENDING`` on, sending for real.

    Its broker is kombu's in-memory transport: tasks are published (and PENDING rows
    recorded), and no worker runs them.
    """
    from celery import _state

    from .. import pending  # imports the models: not before Django is set up

    result_app.conf.broker_url = "memory://"
    previous = _state.get_current_app()
    result_app.set_current()
    try:
        with override_settings(DJANGO_CELERY_RESULTS={"TRACK_PENDING": True}):
            yield result_app
            assert pending.flush(10), "the PENDING writer did not finish"
    finally:
        previous.set_current()
        pending.release()  # its connection would keep the test database from being dropped
