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


class PatternIndexOnline(migrations.operations.base.Operation):
    """Give an existing index PostgreSQL's pattern operators, without blocking writes.

    The state swaps ``old`` for ``new`` (same name and column, ``opclasses`` added). Only
    PostgreSQL has operator classes: it builds the new index ``CONCURRENTLY`` under a
    temporary name, drops the old one and renames the new one. Other databases ignore
    ``opclasses``, so their index is already what the state describes.
    """

    reduces_to_sql = False
    reversible = True

    def __init__(self, model_name: str, old: models.Index, new: models.Index) -> None:
        self.model_name = model_name
        self.old = old
        self.new = new

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        """The operation as the migration file writes it."""
        kwargs = {"model_name": self.model_name, "old": self.old, "new": self.new}
        return type(self).__qualname__, [], kwargs

    def state_forwards(self, app_label: str, state: Any) -> None:
        """Swap the index in the migration state."""
        state.remove_index(app_label, self.model_name.lower(), self.old.name)
        state.add_index(app_label, self.model_name.lower(), self.new)

    def database_forwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        """Rebuild the index with the new operator classes (PostgreSQL only)."""
        self._swap(app_label, schema_editor, to_state, self.old, self.new)

    def database_backwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        """Rebuild the index as it was (PostgreSQL only)."""
        self._swap(app_label, schema_editor, to_state, self.new, self.old)

    def _swap(
        self,
        app_label: str,
        schema_editor: Any,
        state: Any,
        current: models.Index,
        wanted: models.Index,
    ) -> None:
        model = state.apps.get_model(app_label, self.model_name)
        if schema_editor.connection.vendor != "postgresql" or not self.allow_migrate_model(
            schema_editor.connection.alias, model
        ):
            return
        building = models.Index(
            fields=wanted.fields, name=f"{wanted.name[:24]}_new", opclasses=wanted.opclasses
        )
        quote = schema_editor.quote_name
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {quote(building.name)}")
        schema_editor.add_index(model, building, concurrently=True)
        schema_editor.remove_index(model, current, concurrently=True)
        schema_editor.execute(f"ALTER INDEX {quote(building.name)} RENAME TO {quote(wanted.name)}")

    def describe(self) -> str:
        """Say what changes."""
        return f"Index {self.new.name} on {self.model_name} with {self.new.opclasses}, online"
