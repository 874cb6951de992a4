"""What PostgreSQL does that the generic driver cannot count on."""

from django_celery_results.drivers import GenericFeatures


class PostgresFeatures(GenericFeatures):
    """Flags of the PostgreSQL driver; the rest are the generic ones."""

    # Does store_task_results write a row in one statement that applies precedence?
    # INSERT … ON CONFLICT (task_id) DO UPDATE … WHERE <precedence>.
    supports_single_statement_upsert = True
    # Does store_task_results write many rows in one statement? Multi-row VALUES.
    supports_multi_row_upsert = True
    # Does chord_part_return decrement and read the counter in one statement?
    # UPDATE … RETURNING count.
    supports_atomic_chord_decrement = True
    # Can writes of finished tasks notify listening clients? pg_notify in the upsert's
    # statement, delivered at commit; LISTEN on a dedicated connection.
    supports_notify = True
