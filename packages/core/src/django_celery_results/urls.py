"""URLs of the JSON views: ``task/done/<id>/``, ``task/status/<id>/`` and the group ones.

While ``DJANGO_CELERY_RESULTS_ID_FIRST_URLS`` is true (the default), the deprecated
id-first forms (``<id>/done/``, ``<id>/status/``, ``<id>/group/done/``,
``<id>/group/status/``) are added too, under the same names, and importing this module
emits a :class:`DeprecationWarning`. Set it to ``False`` to keep only the noun-first forms.
"""

from __future__ import annotations

import warnings

from django.conf import settings
from django.urls import URLPattern, path, register_converter
from django.urls.converters import get_converters

from . import views

__all__ = ["TaskPatternConverter", "urlpatterns"]


class TaskPatternConverter:
    """Path converter for task and group ids, which need not be UUIDs."""

    regex = r"[\w\d\-\.]+"

    def to_python(self, value: str) -> str:
        """Convert the URL part into the id."""
        return str(value)

    def to_url(self, value: str) -> str:
        """Convert the id into the URL part."""
        return value


# Registering a name twice warns (and fails from Django 6.0), e.g. when the module reloads.
if "task_pattern" not in get_converters():
    register_converter(TaskPatternConverter, "task_pattern")

urlpatterns: list[URLPattern] = [
    path(
        "task/done/<task_pattern:task_id>/",
        views.is_task_successful,
        name="celery-is_task_successful",
    ),
    path(
        "task/status/<task_pattern:task_id>/",
        views.task_status,
        name="celery-task_status",
    ),
    path(
        "group/done/<task_pattern:group_id>/",
        views.is_group_successful,
        name="celery-is_group_successful",
    ),
    path(
        "group/status/<task_pattern:group_id>/",
        views.group_status,
        name="celery-group_status",
    ),
]

if getattr(settings, "DJANGO_CELERY_RESULTS_ID_FIRST_URLS", True):
    warnings.warn(
        "ID first urls deprecated, use noun first urls instead: set "
        "DJANGO_CELERY_RESULTS_ID_FIRST_URLS = False and use task/done/<id>/, "
        "task/status/<id>/, group/done/<id>/ and group/status/<id>/.",
        DeprecationWarning,
        stacklevel=1,  # the import itself is what is deprecated
    )
    # Same names as above: being last, these win in reverse(), as upstream's do.
    urlpatterns += [
        path(
            "<task_pattern:task_id>/done/",
            views.is_task_successful,
            name="celery-is_task_successful",
        ),
        path(
            "<task_pattern:task_id>/status/",
            views.task_status,
            name="celery-task_status",
        ),
        path(
            "<task_pattern:group_id>/group/done/",
            views.is_group_successful,
            name="celery-is_group_successful",
        ),
        path(
            "<task_pattern:group_id>/group/status/",
            views.group_status,
            name="celery-group_status",
        ),
    ]
