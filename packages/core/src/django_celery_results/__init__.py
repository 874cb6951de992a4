"""Celery result backends for Django: task and group results in Django's database or cache."""

from typing import NamedTuple

__version__ = "3.0.0"
__author__ = "django-celery-results contributors"
__homepage__ = "https://github.com/celery/django-celery-results"
__docformat__ = "restructuredtext"


class version_info_t(NamedTuple):
    """The parts of ``__version__``, as upstream exposes them."""

    major: int
    minor: int
    micro: int
    releaselevel: str
    serial: str


VERSION = version_info = version_info_t(3, 0, 0, "", "")

__all__: list[str] = []
