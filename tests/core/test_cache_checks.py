"""System checks of the django-cache configuration."""

from __future__ import annotations

from django.test import override_settings

from django_celery_results.checks import check_cache_backend


def ids(messages: list) -> list[str]:  # type: ignore[type-arg]
    return [m.id for m in messages]


@override_settings(CELERY_CACHE_BACKEND="django-cache")
def test_the_getting_started_typo_names_the_fix() -> None:
    [error] = check_cache_backend()
    assert error.id == "django_celery_results.E002"
    assert "CELERY_RESULT_BACKEND = 'django-cache'" in (error.hint or "")


@override_settings(CELERY_RESULT_BACKEND="django-cache", CELERY_CACHE_BACKEND="nope")
def test_unknown_cache_alias() -> None:
    [error] = check_cache_backend()
    assert error.id == "django_celery_results.E003"
    assert "'nope'" in error.msg


@override_settings(CELERY_RESULT_BACKEND="django-cache")
def test_locmem_default_cache_warns() -> None:
    [warning] = check_cache_backend()
    assert warning.id == "django_celery_results.W001"
    assert "will not be visible" in warning.msg


@override_settings(CELERY_RESULT_BACKEND="django-cache", CELERY_CACHE_BACKEND="dummy")
def test_dummy_cache_warns() -> None:
    assert ids(check_cache_backend()) == ["django_celery_results.W001"]


@override_settings(CELERY_RESULT_BACKEND="django-cache", CELERY_CACHE_BACKEND="database")
def test_shared_cache_is_fine() -> None:
    assert check_cache_backend() == []


@override_settings(CELERY_RESULT_BACKEND="django-db")
def test_database_backend_is_not_checked() -> None:
    assert check_cache_backend() == []
