"""MySQL and MariaDB driver for django-celery-results (mysqlclient)."""

from .driver import MySQLDriver

__all__ = ["MySQLDriver"]
