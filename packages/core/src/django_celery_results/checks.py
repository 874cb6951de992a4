"""System checks: the ``DJANGO_CELERY_RESULTS`` setting, and which driver serves each database."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Info, Tags, Warning, register
from django.db import DatabaseError, connections, router

from .conf import SETTING_NAME, validate
from .drivers.base import APP_LABEL, IdUsage
from .drivers.manager import driver_class_for_vendor, driver_for_alias


@register(Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Report unknown keys and wrong types in ``DJANGO_CELERY_RESULTS``."""
    return [
        Error(
            problem,
            hint="Fix or remove the key; every key is listed in docs/settings.md.",
            id="django_celery_results.E001",
        )
        for problem in validate(getattr(settings, SETTING_NAME, None))
    ]


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
