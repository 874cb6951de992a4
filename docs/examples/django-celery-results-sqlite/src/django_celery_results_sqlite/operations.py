"""SQLite's fragments of core's statements: dates as Django stores them, the row limit."""

from collections.abc import Sequence
from typing import Any

from django_celery_results.drivers import SQLOperations, TaskRow


class SQLiteOperations(SQLOperations):
    """Core's defaults are SQLite's spelling (``ON CONFLICT``, ``EXCLUDED``, ``RETURNING``)."""

    #: 17 parameters a row, under SQLite's default limit of 32,766.
    max_rows_per_statement = 500

    def task_row_params(self, rows: Sequence[TaskRow]) -> list[Any]:
        """The values, dates as the text Django writes on SQLite (naive, in UTC)."""
        adapt = self.connection.ops.adapt_datetimefield_value
        params: list[Any] = []
        for row in rows:
            params.extend(
                adapt(value) if name in TaskRow.DATE_COLUMNS else value
                for name, value in zip(TaskRow.COLUMNS, row.values(), strict=True)
            )
        return params
