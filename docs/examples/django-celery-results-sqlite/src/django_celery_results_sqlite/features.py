"""What SQLite 3.35+ does that the generic driver cannot count on."""

from django_celery_results.drivers import GenericFeatures


class SQLiteFeatures(GenericFeatures):
    """Flags of the SQLite driver; the rest are the generic ones."""

    # INSERT … ON CONFLICT (task_id) DO UPDATE … WHERE <precedence>.
    supports_single_statement_upsert = True
    # Multi-row VALUES.
    supports_multi_row_upsert = True
    # UPDATE … RETURNING count.
    supports_atomic_chord_decrement = True
