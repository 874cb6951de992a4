"""The catch-up's statements: a whole chunk of rows per statement, set-based.

Django's ``bulk_create`` and ``bulk_update`` build expressions per row and value, which
costs the catch-up more than the database does, and ``bulk_update``'s ``CASE`` grows with
the square of the rows. Django has no portable statement that updates rows from a list of
values, so each database gets its own spelling of one: PostgreSQL joins ``unnest`` of one
array per column (a few parameters, whatever the row count), MySQL and MariaDB join a
``UNION ALL`` of rows, SQLite (and any other database) joins ``VALUES``. Only the catch-up,
holding the history's lock, runs them, on the driver's cursor: PostgreSQL's sends the
arrays binary (escaping each element as text cost the catch-up a quarter of its time).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import DateTimeField, Field, Model

from ..drivers import driver_for_alias

#: Rows per statement (fewer where the database limits bind parameters).
ROWS_PER_STATEMENT = 1000


def insert(
    alias: str, model: type[Model], columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """``INSERT`` ``rows``, their values in ``columns`` order."""
    if not rows:
        return
    connection = connections[alias]
    fields = concrete_fields(model, columns)
    quote = connection.ops.quote_name
    names = ", ".join(quote(str(field.column)) for field in fields)
    head = f"INSERT INTO {quote(model._meta.db_table)} ({names}) "
    values = adapted(connection, fields, rows)
    with _cursor(alias) as cursor:
        if connection.vendor == "postgresql":
            source = _unnest(alias, connection, fields)
            cursor.execute(head + f"SELECT * FROM {source}", _arrays(values))
            return
        one = f"({', '.join(['%s'] * len(fields))})"
        for part in _parts(connection, values, len(fields)):
            cursor.execute(head + "VALUES " + ", ".join([one] * len(part)), _flat(part))


def update(
    alias: str,
    model: type[Model],
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    constants: dict[str, str] | None = None,
) -> None:
    """Set ``columns`` of each row by its id (rows are ``(id, *values)``), and ``constants``."""
    if not rows:
        return
    connection, pk, table, key = _target(alias, model)
    quote = connection.ops.quote_name
    fields = [pk, *concrete_fields(model, columns)]
    names = [f"c{index}" for index in range(len(fields))]
    sets = [
        f"{quote(str(field.column))} = v.{name}"
        for field, name in zip(fields[1:], names[1:], strict=True)
    ]
    sets += [f"{quote(name)} = {sql}" for name, sql in (constants or {}).items()]
    values = adapted(connection, fields, rows)
    with _cursor(alias) as cursor:
        if connection.vendor == "postgresql":
            source = f"{_unnest(alias, connection, fields)} AS v({', '.join(names)})"
            cursor.execute(
                f"UPDATE {table} AS t SET {', '.join(sets)} FROM {source} WHERE t.{key} = v.c0",
                _arrays(values),
            )
            return
        for part in _parts(connection, values, len(fields)):
            if connection.vendor == "mysql":
                sql = (
                    f"UPDATE {table} AS t JOIN ({_union_all(names, len(part))}) AS v "
                    f"ON t.{key} = v.c0 SET {', '.join(f't.{one}' for one in sets)}"
                )
            else:
                sql = (
                    f"UPDATE {table} SET {', '.join(sets)} FROM {_values(names, len(part))} "
                    f"AS v WHERE {table}.{key} = v.c0"
                )
            cursor.execute(sql, _flat(part))


def _union_all(names: Sequence[str], count: int) -> str:
    """MySQL: ``count`` rows of parameters, the first naming the columns ``names``."""
    first = ", ".join(f"%s AS {name}" for name in names)
    rest = ", ".join(["%s"] * len(names))
    return " UNION ALL ".join([f"SELECT {first}"] + [f"SELECT {rest}"] * (count - 1))


def _values(names: Sequence[str], count: int) -> str:
    """SQLite and others: ``count`` rows of parameters as ``VALUES``, columns ``names``."""
    one = f"({', '.join(['%s'] * len(names))})"
    columns = ", ".join(f"column{index + 1} AS {name}" for index, name in enumerate(names))
    return f"(SELECT {columns} FROM (VALUES {', '.join([one] * count)}))"


def delete(alias: str, model: type[Model], ids: Sequence[int]) -> None:
    """``DELETE`` the rows of ``ids``."""
    if not ids:
        return
    connection, _pk, table, key = _target(alias, model)
    head = f"DELETE FROM {table} WHERE {key} IN "
    with _cursor(alias) as cursor:
        for part in _parts(connection, [(key,) for key in ids], 1):
            cursor.execute(head + f"({', '.join(['%s'] * len(part))})", _flat(part))


def _target(
    alias: str, model: type[Model]
) -> tuple[BaseDatabaseWrapper, Field[Any, Any], str, str]:
    """The connection, ``model``'s primary key, and its table and key column, quoted."""
    connection = connections[alias]
    quote = connection.ops.quote_name
    pk = model._meta.pk
    assert pk is not None
    return connection, pk, quote(model._meta.db_table), quote(str(pk.column))


def adapted(
    connection: BaseDatabaseWrapper,
    fields: Sequence[Field[Any, Any]],
    rows: Sequence[Sequence[Any]],
) -> list[tuple[Any, ...]]:
    """The rows' values as the database takes them: dates as the connection stores them."""
    adapt = connection.ops.adapt_datetimefield_value
    converters: list[Callable[[Any], Any] | None] = [
        adapt if isinstance(field, DateTimeField) else None for field in fields
    ]
    if not any(converters):
        return [tuple(row) for row in rows]
    return [
        tuple(
            value if convert is None else convert(value)
            for convert, value in zip(converters, row, strict=True)
        )
        for row in rows
    ]


def concrete_fields(model: type[Model], names: Sequence[str]) -> list[Field[Any, Any]]:
    """The model's fields of ``names`` (a foreign key by its field name: its id column)."""
    fields = []
    for name in names:
        field = model._meta.get_field(name)
        assert isinstance(field, Field)
        fields.append(field)
    return fields


def _cursor(alias: str) -> Any:
    """The driver's cursor for a few statements (PostgreSQL's binds on the server)."""
    return driver_for_alias(alias).ops.cursor()


def _unnest(alias: str, connection: BaseDatabaseWrapper, fields: Sequence[Field[Any, Any]]) -> str:
    """PostgreSQL: rows from one array parameter per column, typed as the columns."""
    mark = driver_for_alias(alias).ops.array_placeholder
    types = []
    for field in fields:
        db_type = field.rel_db_type(connection) if field.is_relation else field.db_type(connection)
        types.append(f"{mark}::{str(db_type).replace('serial', 'integer')}[]")
    return f"unnest({', '.join(types)})"


def _arrays(rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    return [list(column) for column in zip(*rows, strict=True)]


def _parts(
    connection: BaseDatabaseWrapper, rows: Sequence[Sequence[Any]], width: int
) -> list[Sequence[Sequence[Any]]]:
    limit = connection.features.max_query_params
    size = min(ROWS_PER_STATEMENT, limit // width) if limit else ROWS_PER_STATEMENT
    return [rows[start : start + size] for start in range(0, len(rows), max(size, 1))]


def _flat(rows: Sequence[Sequence[Any]]) -> list[Any]:
    return [value for row in rows for value in row]
