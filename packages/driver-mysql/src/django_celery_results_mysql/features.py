"""What MySQL and MariaDB do that the generic driver cannot count on."""

from functools import cached_property

from django_celery_results.drivers import GenericFeatures


class MySQLFeatures(GenericFeatures):
    """Flags of the MySQL driver; the rest are the generic ones."""

    # Does store_task_results write a row in one statement that applies precedence?
    # INSERT … ON DUPLICATE KEY UPDATE col = IF(<precedence>, new, col).
    supports_single_statement_upsert = True
    # Does store_task_results write many rows in one statement? Multi-row VALUES.
    supports_multi_row_upsert = True
    # Does chord_part_return decrement and read the counter in one statement?
    # UPDATE … SET count = LAST_INSERT_ID(count - 1).
    supports_atomic_chord_decrement = True

    @cached_property
    def supports_insert_row_alias(self) -> bool:
        """Can ``ON DUPLICATE KEY UPDATE`` name the new row by an alias (``AS new``)?

        MySQL 8.0.19 added row aliases and 8.0.20 deprecated ``VALUES(col)`` for them;
        MariaDB has no row aliases and keeps ``VALUES(col)``.
        """
        connection = self.connection
        if connection.mysql_is_mariadb:  # type: ignore[attr-defined]
            return False
        return bool(connection.mysql_version >= (8, 0, 19))  # type: ignore[attr-defined]
