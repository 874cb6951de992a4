"""The SQLite driver: core's statements with SQLite's spelling of dates."""

from django_celery_results.drivers import BaseDriver

from .features import SQLiteFeatures
from .operations import SQLiteOperations


class SQLiteDriver(BaseDriver):
    """Single-statement upserts, multi-row writes and an atomic chord counter."""

    vendor = "sqlite"
    display_name = "SQLite (example driver)"
    features_class = SQLiteFeatures
    ops_class = SQLiteOperations
