"""Migration operations that leave a large table writable: indexes built online."""

from __future__ import annotations

from typing import Any

from django.db import migrations, models


class AddIndexOnline(migrations.AddIndex):
    """``AddIndex``, built without blocking writes to the table, where the database can.

    PostgreSQL builds it ``CONCURRENTLY`` (so the migration is not atomic); MySQL and
    MariaDB ``ALGORITHM=INPLACE, LOCK=NONE``. A partial index on a database without them
    (MySQL) indexes the condition's column instead: the same rows come first in it.
    """

    def database_forwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        """Build the index online."""
        model = to_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        index = self.index
        vendor = schema_editor.connection.vendor
        if vendor == "postgresql":
            schema_editor.add_index(model, index, concurrently=True)
            return
        if (
            index.condition is not None
            and not schema_editor.connection.features.supports_partial_indexes
        ):
            index = models.Index(fields=condition_columns(index.condition), name=index.name)
        if vendor == "mysql":
            schema_editor.execute(
                f"{index.create_sql(model, schema_editor)} ALGORITHM=INPLACE LOCK=NONE",
                params=None,
            )
            return
        schema_editor.add_index(model, index)

    def database_backwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        """Drop the index (online on PostgreSQL)."""
        model = from_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.remove_index(model, self.index, concurrently=True)
        else:
            schema_editor.remove_index(model, self.index)

    def describe(self) -> str:
        """Say the index is built online."""
        return f"{super().describe()}, online"


def condition_columns(condition: models.Q) -> list[str]:
    """The columns a simple ``Q(column=value, …)`` condition names, in order."""
    return [child[0] for child in condition.children if isinstance(child, tuple)]
