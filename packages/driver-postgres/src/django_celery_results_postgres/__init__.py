"""PostgreSQL driver for django-celery-results (psycopg 3)."""

from .driver import PostgresDriver

__all__ = ["PostgresDriver"]
