"""The PostgreSQL driver: Django's ``postgresql`` backend with psycopg 3."""

from django_celery_results.drivers import BaseDriver

from .features import PostgresFeatures
from .operations import PostgresOperations


class PostgresDriver(BaseDriver):
    """Single-statement upserts, multi-row writes and an atomic chord counter."""

    vendor = "postgresql"
    display_name = "PostgreSQL (psycopg 3)"
    features_class = PostgresFeatures
    ops_class = PostgresOperations
