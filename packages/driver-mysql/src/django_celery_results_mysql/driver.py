"""The MySQL driver: Django's ``mysql`` backend with mysqlclient, on MySQL or MariaDB."""

from django_celery_results.drivers import BaseDriver

from .features import MySQLFeatures
from .operations import MySQLOperations


class MySQLDriver(BaseDriver):
    """Single-statement upserts, multi-row writes and an atomic chord counter."""

    vendor = "mysql"
    display_name = "MySQL/MariaDB (mysqlclient)"
    features_class = MySQLFeatures
    ops_class = MySQLOperations
