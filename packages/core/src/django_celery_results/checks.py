"""System checks: the ``DJANGO_CELERY_RESULTS`` setting, and which driver serves each database."""

from __future__ import annotations

import contextlib
import difflib
import logging
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.checks import ERROR, WARNING, CheckMessage, Error, Info, Tags, Warning, register
from django.db import DatabaseError, connections, router

from .conf import SETTING_NAME, app_settings, lifeline_problems, validate
from .conf import warnings as setting_warnings
from .drivers.base import APP_LABEL, IdUsage
from .drivers.manager import driver_class_for_vendor, driver_for_alias

logger = logging.getLogger(__name__)


@register(Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Report unknown keys, wrong types and ranges in ``DJANGO_CELERY_RESULTS``.

    Also warn of ``RETENTION`` states that are neither Celery's nor declared.
    """
    raw = getattr(settings, SETTING_NAME, None)
    messages: list[CheckMessage] = [
        Error(
            problem,
            hint="Fix or remove the key; every key is listed in docs/settings.md.",
            id="django_celery_results.E001",
        )
        for problem in validate(raw)
    ]
    messages.extend(
        Warning(
            problem,
            hint="Declare your tasks' own states in DJANGO_CELERY_RESULTS['CUSTOM_STATES'].",
            id="django_celery_results.W004",
        )
        for problem in setting_warnings(raw)
    )
    return messages


#: The result backend aliases this package provides.
BACKEND_ALIASES = ("django-db", "django-cache")


@register(Tags.compatibility)
def check_result_backend(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Catch a near miss of ``django-db`` or ``django-cache`` in ``CELERY_RESULT_BACKEND``.

    Celery reads an unknown name as a module to import, so ``django_db`` passes every
    check and then stops the worker with "No module named 'django_db'".
    """
    from celery import current_app

    values = {getattr(settings, "CELERY_RESULT_BACKEND", None)}
    with contextlib.suppress(Exception):  # the app's own configuration (celery.py)
        values.add(current_app.conf.result_backend)
    messages: list[CheckMessage] = []
    for value in values:
        near = _backend_near_miss(value)
        if near is not None:
            messages.append(
                Error(
                    f"The result backend {value!r} names no result backend: Celery would "
                    f"try to import a module called {value!r} and the worker would not start.",
                    hint=f"Did you mean CELERY_RESULT_BACKEND = {near!r}?",
                    id="django_celery_results.E008",
                )
            )
    return messages


@register(Tags.compatibility)
def check_lifeline(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """The lifeline: an invalid setting turns it off; without ``track_started`` it has no rows.

    Only for an app that stores results with ``django-db`` and has the registry on.
    """
    from celery import current_app

    conf = app_settings()
    try:
        uses_database = current_app.conf.result_backend == "django-db"
        track_started = bool(current_app.conf.task_track_started)
    except Exception:  # the app's configuration cannot be read: nothing to say
        return []
    messages: list[CheckMessage] = [
        Error(
            problem,
            hint="The lifeline settles nothing until it is fixed (docs/workers.md).",
            id="django_celery_results.E009",
        )
        for problem in lifeline_problems()
    ]
    if uses_database and conf.WORKER_HEARTBEAT and conf.LIFELINE_GRACE and not track_started:
        messages.append(
            Warning(
                "task_track_started is off: tasks store no STARTED row, so the lifeline has "
                "nothing to settle when a worker is lost, and the dashboard no running tasks.",
                hint="Set CELERY_TASK_TRACK_STARTED = True (docs/workers.md).",
                id="django_celery_results.W006",
            )
        )
    return messages


def _backend_near_miss(value: Any) -> str | None:
    """``django-db`` or ``django-cache`` when ``value`` is a near miss of one, else None."""
    if not isinstance(value, str) or value in BACKEND_ALIASES or "://" in value or "." in value:
        return None
    normal = value.strip().lower().replace("_", "-").replace(" ", "-")
    near = difflib.get_close_matches(normal, BACKEND_ALIASES, n=1, cutoff=0.75)
    return near[0] if near else None


@register(Tags.security)
def check_result_views(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Warn while the JSON views serve any task's result and traceback to anyone."""
    from django.urls import get_resolver

    from .conf import app_settings

    if app_settings().RESULT_VIEWS_PERMISSION is not None:
        return []
    try:
        routed = _routes_result_views(get_resolver().url_patterns)
    except Exception:  # a broken URLconf is Django's own check to report
        return []
    if not routed:
        return []
    return [
        Warning(
            "django_celery_results' JSON views (task/status/<task_id>/ and friends) give "
            "any task's result and traceback to anyone, logged in or not.",
            hint="Set DJANGO_CELERY_RESULTS['RESULT_VIEWS_PERMISSION'] to a permission such "
            "as 'django_celery_results.view_taskresult' (or a function of the request), or "
            "silence this warning if the results are public (SILENCED_SYSTEM_CHECKS). "
            "docs/settings.md.",
            id="django_celery_results.W005",
        )
    ]


def _routes_result_views(patterns: Any) -> bool:
    """Whether URL ``patterns`` (included ones too, namespaced or not) route our views."""
    from django.urls import URLResolver

    from . import views

    ours = {views.task_status, views.is_task_successful, views.group_status}
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            if _routes_result_views(pattern.url_patterns):
                return True
        elif getattr(pattern, "callback", None) in ours:
            return True
    return False


#: The checks a worker and beat log when they start (Celery's Django fixup runs Django's
#: checks there, and discards what they say).
STARTUP_CHECKS: list[Any] = []


def log_at_start(sender: Any = None, **kwargs: Any) -> None:
    """Log our checks' errors and warnings: what ``manage.py check`` would say.

    Connected to Celery's ``worker_ready`` and ``beat_init`` (``AppConfig.ready()``).
    """
    for check in STARTUP_CHECKS:
        try:
            messages = check()
        except Exception:  # a check must never stop a worker
            logger.exception("django_celery_results: the check %s failed", check.__name__)
            continue
        for message in messages:
            if message.level < WARNING:
                continue
            logger.log(
                logging.ERROR if message.level >= ERROR else logging.WARNING,
                "%s: %s%s",
                message.id,
                message.msg,
                f" HINT: {message.hint}" if message.hint else "",
            )


@register(Tags.database)
def check_drivers(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[CheckMessage]:
    """Say which driver serves each database alias (``manage.py check --database …``)."""
    messages: list[CheckMessage] = []
    for alias in databases or ():
        vendor = connections[alias].vendor
        driver = driver_class_for_vendor(vendor)
        messages.append(
            Info(
                f"Database {alias!r} ({vendor}) is served by {driver.__module__}."
                f"{driver.__qualname__}.",
                hint=None
                if driver.vendor == vendor
                else f"Install a driver for {vendor} for faster writes, if there is one "
                "(e.g. django-celery-results[postgres] or [mysql]).",
                id="django_celery_results.I001",
            )
        )
    return messages


#: Warn when the task table's ``id`` has used more than this part of its type's range.
ID_USAGE_WARNING = 0.5


def id_usage_warning(alias: str, usage: IdUsage) -> str | None:
    """The warning of a task table whose ``id`` nears its type's end, or None."""
    if usage.share <= ID_USAGE_WARNING:
        return None
    return (
        f"The task results' id in database {alias!r} has used {usage.share:.0%} of its "
        f"{usage.type} range ({usage.last:,} of {usage.maximum:,}): every state write draws "
        "an id, updates included, and no row can be written once it runs out."
    )


#: How to move the id to a wider type (the system check's hint, the stats command's line).
ID_USAGE_FIX = (
    "Move the id column to bigint before it runs out: ALTER TABLE "
    "django_celery_results_taskresult ALTER COLUMN id TYPE bigint (PostgreSQL), or MODIFY "
    "id bigint NOT NULL AUTO_INCREMENT (MySQL/MariaDB). It rewrites the table under a lock: "
    "plan a maintenance window, or use an online schema change tool. docs/settings.md."
)


@register(Tags.database)
def check_id_range(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[CheckMessage]:
    """Warn before the task table's ``id`` runs out (``manage.py check --database …``)."""
    model = apps.get_model(APP_LABEL, "TaskResult")
    messages: list[CheckMessage] = []
    for alias in databases or ():
        if not router.allow_migrate_model(alias, model):
            continue
        try:
            usage = driver_for_alias(alias).ops.id_usage()
        except DatabaseError:  # not migrated there yet, or unreachable: said elsewhere
            continue
        problem = None if usage is None else id_usage_warning(alias, usage)
        if problem is not None:
            messages.append(Warning(problem, hint=ID_USAGE_FIX, id="django_celery_results.W003"))
    return messages


@register(Tags.compatibility)
def check_notify(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """``NOTIFY`` needs a driver whose database can notify (PostgreSQL's)."""
    raw = getattr(settings, SETTING_NAME, None)
    if not isinstance(raw, dict) or raw.get("NOTIFY") is not True:
        return []
    alias = router.db_for_write(apps.get_model(APP_LABEL, "TaskResult")) or "default"
    vendor = connections[alias].vendor
    driver = driver_class_for_vendor(vendor)
    messages: list[CheckMessage] = []
    if not driver.features_class.supports_notify:
        messages.append(
            Error(
                f"DJANGO_CELERY_RESULTS['NOTIFY'] is on, but results are stored in database "
                f"{alias!r} ({vendor}), whose driver ({driver.__qualname__}) cannot notify "
                "waiting clients.",
                hint="NOTIFY needs PostgreSQL with the postgres driver (pip install "
                "'django-celery-results[postgres]'). Elsewhere remove the key: clients poll.",
                id="django_celery_results.E004",
            )
        )
    elif connections[alias].settings_dict.get("DISABLE_SERVER_SIDE_CURSORS"):
        messages.append(
            Warning(
                f"DJANGO_CELERY_RESULTS['NOTIFY'] is on, but database {alias!r} sets "
                "DISABLE_SERVER_SIDE_CURSORS, as behind a transaction-mode pooler such as "
                "PgBouncer, where LISTEN does not work.",
                hint="Clients fall back to polling when their listener's own probe does "
                "not come back; point the database at PostgreSQL directly (or a pooler in "
                "session mode) for notifications.",
                id="django_celery_results.W002",
            )
        )
    return messages


#: Django caches a worker and a web process cannot share.
PROCESS_LOCAL_CACHES = {
    "django.core.cache.backends.locmem.LocMemCache": "keeps values inside one process",
    "django.core.cache.backends.dummy.DummyCache": "stores nothing",
}


@register(Tags.caches)
def check_cache_backend(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Catch the getting-started page's typo, unknown aliases and per-process caches.

    Read from the ``CELERY_`` namespace the Celery settings are usually loaded from.
    """
    cache_alias = getattr(settings, "CELERY_CACHE_BACKEND", None)
    if cache_alias == "django-cache":
        return [
            Error(
                "CELERY_CACHE_BACKEND = 'django-cache' names no cache: 'django-cache' is a "
                "result backend, not a CACHES alias.",
                hint="Set CELERY_RESULT_BACKEND = 'django-cache', and CELERY_CACHE_BACKEND "
                "to the CACHES alias to store results in (or remove it to use 'default').",
                id="django_celery_results.E002",
            )
        ]
    if getattr(settings, "CELERY_RESULT_BACKEND", None) != "django-cache":
        return []
    alias = cache_alias or "default"
    if alias not in settings.CACHES:
        return [
            Error(
                f"CELERY_CACHE_BACKEND names the cache {alias!r}, which is not in CACHES.",
                hint=f"Add {alias!r} to CACHES or name one of: {', '.join(settings.CACHES)}.",
                id="django_celery_results.E003",
            )
        ]
    problem = PROCESS_LOCAL_CACHES.get(settings.CACHES[alias].get("BACKEND", ""))
    if problem is None:
        return []
    return [
        Warning(
            f"The django-cache result backend uses the cache {alias!r}, whose backend "
            f"{problem}: results stored by a worker will not be visible to the web "
            "process or to other workers.",
            hint="Point CELERY_CACHE_BACKEND at a cache that processes share: Redis, "
            "Memcached, DatabaseCache or FileBasedCache.",
            id="django_celery_results.W001",
        )
    ]


STARTUP_CHECKS.extend(
    [check_settings, check_result_backend, check_notify, check_cache_backend, check_lifeline]
)
