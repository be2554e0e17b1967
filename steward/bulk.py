"""Fast inserts of many rows: PostgreSQL COPY, or ``executemany`` on other databases.

For append-only bulk paths (new datasets and their fields, tag assignments, audit events) where the ORM's
per-object overhead dominates. Rows are plain tuples in ``columns`` order; JSON columns take Python
values. Runs on the caller's connection, so it commits or rolls back with the caller's transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from django.db import connection, models

__all__ = [
    "bound_cursor",
    "concrete_field",
    "insert_new_rows",
    "insert_rows",
    "pipelined",
    "RawJson",
    "update_column",
    "update_objects",
    "update_rows",
]


class RawJson(str):
    """A JSON column's value already serialised (written as is, not serialised again)."""


# Up to this many rows go in one INSERT ... VALUES statement (one round trip); more by COPY.
SMALL = 200


def _cast(field: models.Field[Any, Any]) -> str:
    """The type to cast a parameter to; text columns without their length (an explicit cast to
    ``varchar(n)`` would silently truncate, whereas the assignment refuses an over-long value)."""
    if isinstance(field, models.CharField | models.TextField):
        return "text"
    return field.cast_db_type(connection) or "text"


def _values(
    fields: Sequence[models.Field[Any, Any]], rows: Sequence[Sequence[Any]], json_positions: list[int]
) -> tuple[str, list[Any]]:
    """``(%s::type, ...), (...)`` for ``rows`` and their parameters; JSON values serialised here."""
    one = "(" + ", ".join(f"%s::{_cast(f)}" for f in fields) + ")"
    params: list[Any] = []
    for row in rows:
        if json_positions:
            row = list(row)
            for i in json_positions:
                if row[i] is not None and not isinstance(row[i], RawJson):
                    row[i] = json.dumps(row[i])
        params.extend(row)
    return ", ".join([one] * len(rows)), params


def _unnest(
    fields: Sequence[models.Field[Any, Any]], rows: Sequence[Sequence[Any]], json_positions: list[int], names: str
) -> tuple[str, list[Any]]:
    """``SELECT ... FROM unnest(%s::type[], ...) AS v (names)`` for ``rows``, one array parameter per column
    (however many rows: one statement, no staging table); JSON values serialised here and cast back per row."""
    if any(_cast(f).endswith("]") for f in fields):  # unnest would flatten an array column's values
        raise ValueError("steward.bulk cannot skip conflicts on a table with an array column")
    columns: list[list[Any]] = [list(column) for column in zip(*rows, strict=True)]
    for i in json_positions:
        columns[i] = [v if v is None or isinstance(v, RawJson) else json.dumps(v) for v in columns[i]]
    # Binary arrays (psycopg formats a text array in Python, element by element); a column of nulls only has no
    # element type to send in binary.
    arrays = ", ".join(
        f"%{'s' if all(v is None for v in columns[i]) else 'b'}::{'text' if i in json_positions else _cast(f)}[]"
        for i, f in enumerate(fields)
    )
    quoted = names.split(", ")
    select = ", ".join(f"v.{q}::jsonb" if i in json_positions else f"v.{q}" for i, q in enumerate(quoted))
    return f"SELECT {select} FROM unnest({arrays}) AS v ({names})", columns


def bound_cursor() -> Any:
    """A Django cursor (logged and wrapped as any) whose parameters psycopg sends apart from the statement
    (server-side binding): the arrays of ``_unnest`` are not quoted into the SQL text, which costs more in Python
    than the insert costs PostgreSQL. PostgreSQL only."""
    import psycopg

    connection.ensure_connection()
    return connection._prepare_cursor(psycopg.Cursor(connection.connection))  # type: ignore[attr-defined]


@contextmanager
def pipelined(enabled: bool = True) -> Iterator[None]:
    """Send the statements run inside in one go (psycopg's pipeline mode, PostgreSQL): writes whose results
    nobody reads cost one round trip together instead of one each; a read inside waits for what was sent before
    it. An error surfaces at the latest when the block ends, and rolls back the caller's transaction as usual.
    COPY cannot run in a pipeline: ``insert_rows`` uses ``INSERT ... VALUES`` there (and cannot count the rows an
    ``ignore_conflicts`` insert skipped: it returns 0); ``insert_new_rows`` and other reads belong outside.
    Elsewhere (SQLite), or when not ``enabled``, statements run one by one."""
    if not enabled or connection.vendor != "postgresql":
        yield
        return
    connection.ensure_connection()
    with connection.wrap_database_errors, connection.connection.pipeline():
        yield


def _in_pipeline() -> bool:
    raw = connection.connection
    return raw is not None and raw.pgconn.pipeline_status != 0


def concrete_field(model: type[models.Model], name: str) -> tuple[models.Field[Any, Any], str]:
    """``model``'s field ``name`` and its column; only concrete columns can be bulk-written."""
    field = model._meta.get_field(name)
    if not isinstance(field, models.Field) or field.column is None:
        raise ValueError(f"{model._meta.label}.{name} is not a concrete column")
    return field, field.column


def insert_rows(
    model: type[models.Model],
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    ignore_conflicts: bool = False,
) -> int:
    """Insert ``rows`` into ``model``'s table; ``columns`` are field names (``dataset`` → ``dataset_id``).

    Returns how many rows were inserted. With ``ignore_conflicts``, rows that would violate a unique constraint
    (an id already stored) are skipped, as Django's ``bulk_create(ignore_conflicts=True)`` does: on PostgreSQL one
    ``INSERT ... SELECT ... FROM unnest(...) ON CONFLICT DO NOTHING`` (an array per column) for many rows, where
    ``COPY`` (which cannot skip a conflict) writes those without ``ignore_conflicts``.
    """
    meta = model._meta
    fields = [concrete_field(model, name)[0] for name in columns]
    db_columns = [concrete_field(model, name)[1] for name in columns]
    json_positions = [i for i, f in enumerate(fields) if isinstance(f, models.JSONField)]
    table = connection.ops.quote_name(meta.db_table)
    quoted = ", ".join(connection.ops.quote_name(c) for c in db_columns)
    count = 0
    if connection.vendor == "postgresql":
        rows = rows if isinstance(rows, list) else list(rows)
        if not rows:
            return 0
        if len(rows) <= SMALL or _in_pipeline():  # one round trip; COPY pays only for more rows (and cannot pipeline)
            conflict = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
            with connection.cursor() as cursor:
                for start in range(0, len(rows), SMALL):
                    values, params = _values(fields, rows[start : start + SMALL], json_positions)
                    cursor.execute(f"INSERT INTO {table} ({quoted}) VALUES {values}{conflict}", params)
                    count += max(cursor.rowcount, 0) if ignore_conflicts else len(rows[start : start + SMALL])
            return count
        if ignore_conflicts:  # COPY cannot skip a conflict: one INSERT ... SELECT over one array per column
            select, arrays = _unnest(fields, rows, json_positions, quoted)
            with bound_cursor() as cursor:
                cursor.execute(f"INSERT INTO {table} ({quoted}) {select} ON CONFLICT DO NOTHING", arrays)
                return max(cursor.rowcount, 0)
        with connection.cursor() as cursor:
            return _copy(cursor, table, quoted, rows, json_positions)
    placeholders = ", ".join(["%s"] * len(columns))
    prepared = []
    for row in rows:
        row = list(row)
        for i in json_positions:
            if row[i] is not None and not isinstance(row[i], RawJson):
                row[i] = json.dumps(row[i])
        prepared.append(
            [
                f.get_db_prep_save(v, connection) if i not in json_positions else v
                for i, (f, v) in enumerate(zip(fields, row, strict=True))
            ]
        )
    conflict = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
    with connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {table} ({quoted}) VALUES ({placeholders}){conflict}", prepared)
        inserted = cursor.rowcount
    return inserted if ignore_conflicts and inserted >= 0 else len(prepared)


def _copy(cursor: Any, target: str, quoted: str, rows: Iterable[Sequence[Any]], json_positions: list[int]) -> int:
    """``COPY`` rows into ``target`` (PostgreSQL); returns how many."""
    from psycopg.types.json import Jsonb

    count = 0
    with cursor.cursor.copy(f"COPY {target} ({quoted}) FROM STDIN") as copy:
        for row in rows:
            if json_positions:
                row = list(row)
                for i in json_positions:
                    if row[i] is not None and not isinstance(row[i], RawJson):
                        row[i] = Jsonb(row[i])
            copy.write_row(row)
            count += 1
    return count


def insert_new_rows(
    model: type[models.Model], columns: Sequence[str], rows: Sequence[Sequence[Any]], *, order_by: Sequence[str]
) -> set[Any]:
    """Insert those of ``rows`` that do not collide with a stored row on any unique constraint; return the primary
    keys of the rows inserted (``columns`` must include the primary key).

    Race-free for concurrent writers of the same new rows: PostgreSQL's ``ON CONFLICT DO NOTHING`` waits for a
    concurrent transaction inserting the same key, then skips the row if that one commits, so the caller re-selects
    the rows it did not insert and finds the winner's. Rows go in ``order_by`` order (field names), so that two
    transactions inserting overlapping sets wait for each other in one order and never deadlock.
    """
    if not rows:
        return set()
    meta = model._meta
    fields = [concrete_field(model, name)[0] for name in columns]
    pk_position = [f.primary_key for f in fields].index(True)
    if connection.vendor != "postgresql":
        keys = [columns.index(name) for name in order_by]
        inserted = set()
        for row in sorted(rows, key=lambda r: [r[k] for k in keys]):
            if insert_rows(model, columns, [row], ignore_conflicts=True):
                inserted.add(row[pk_position])
        return inserted
    table = connection.ops.quote_name(meta.db_table)
    quoted = ", ".join(connection.ops.quote_name(concrete_field(model, name)[1]) for name in columns)
    order = ", ".join(connection.ops.quote_name(concrete_field(model, name)[1]) for name in order_by)
    pk_column = connection.ops.quote_name(concrete_field(model, meta.pk.name)[1])
    json_positions = [i for i, f in enumerate(fields) if isinstance(f, models.JSONField)]
    if len(rows) <= SMALL:  # one round trip
        values, params = _values(fields, rows, json_positions)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} ({quoted}) SELECT * FROM (VALUES {values}) AS v ({quoted}) ORDER BY {order} "
                f"ON CONFLICT DO NOTHING RETURNING {pk_column}",
                params,
            )
            return {fields[pk_position].to_python(pk) for (pk,) in cursor.fetchall()}
    select, arrays = _unnest(fields, rows, json_positions, quoted)  # one statement, however many rows
    with bound_cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({quoted}) {select} ORDER BY {order} ON CONFLICT DO NOTHING RETURNING {pk_column}",
            arrays,
        )
        return {fields[pk_position].to_python(pk) for (pk,) in cursor.fetchall()}


def update_rows(model: type[models.Model], columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> int:
    """Set ``columns`` (field names) per row, each row ``(pk, value, ...)`` (one row per primary key): on
    PostgreSQL one ``UPDATE ... FROM unnest(...)`` (an array per column, bound apart from the statement), or
    ``UPDATE ... FROM (VALUES ...)`` per 1,000 rows inside a pipeline or with an array column (Django's
    ``bulk_update`` builds a ``CASE`` per column and row, which costs more in Python than the update costs
    PostgreSQL); elsewhere ``bulk_update``. JSON columns take Python values."""
    if not rows:
        return 0
    meta = model._meta
    if connection.vendor != "postgresql":
        attnames = [concrete_field(model, name)[0].attname for name in columns]
        objs = [model(**{meta.pk.attname: row[0], **dict(zip(attnames, row[1:], strict=True))}) for row in rows]
        return model._default_manager.bulk_update(objs, list(columns), batch_size=500)
    fields = [meta.pk, *(concrete_field(model, name)[0] for name in columns)]
    json_positions = [i for i, f in enumerate(fields) if isinstance(f, models.JSONField)]
    table = connection.ops.quote_name(meta.db_table)
    names = [connection.ops.quote_name(f"c{i}") for i in range(len(fields))]
    sets = ", ".join(
        f"{connection.ops.quote_name(concrete_field(model, name)[1])} = v.{names[i + 1]}"
        for i, name in enumerate(columns)
    )
    pk_column = connection.ops.quote_name(concrete_field(model, meta.pk.name)[1])
    if not _in_pipeline() and not any(_cast(f).endswith("]") for f in fields):
        select, arrays = _unnest(fields, rows, json_positions, ", ".join(names))
        with bound_cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} AS t SET {sets} FROM ({select}) AS v WHERE t.{pk_column} = v.{names[0]}", arrays
            )
        return len(rows)
    with connection.cursor() as cursor:
        for start in range(0, len(rows), 1000):
            values, params = _values(fields, rows[start : start + 1000], json_positions)
            cursor.execute(
                f"UPDATE {table} AS t SET {sets} FROM (VALUES {values}) AS v ({', '.join(names)}) "
                f"WHERE t.{pk_column} = v.{names[0]}",
                params,
            )
    return len(rows)


def update_objects(model: type[models.Model], objs: Iterable[models.Model], fields: Sequence[str]) -> int:
    """``model.objects.bulk_update(objs, fields)`` as ``update_rows`` does it: the objects' current values of
    ``fields`` (field names; one object per primary key) in one statement. No signals, as ``bulk_update``."""
    attnames = [concrete_field(model, name)[0].attname for name in fields]
    return update_rows(model, fields, [(obj.pk, *(getattr(obj, a) for a in attnames)) for obj in objs])


def update_column(model: type[models.Model], field_name: str, values: dict[Any, Any]) -> int:
    """Set ``field_name`` per primary key (``{pk: value}``) in one statement per 5,000 rows.

    PostgreSQL: ``UPDATE ... FROM (VALUES ...)``; elsewhere Django's ``bulk_update``.
    """
    if not values:
        return 0
    if connection.vendor != "postgresql":
        objs = [model(**{model._meta.pk.attname: pk, field_name: value}) for pk, value in values.items()]
        return model._default_manager.bulk_update(objs, [field_name], batch_size=1000)
    meta = model._meta
    field, field_column = concrete_field(model, field_name)
    table = connection.ops.quote_name(meta.db_table)
    column = connection.ops.quote_name(field_column)
    pk_column = connection.ops.quote_name(concrete_field(model, meta.pk.name)[1])
    pk_type = meta.pk.db_type(connection)
    value_type = field.db_type(connection)
    items = list(values.items())
    with connection.cursor() as cursor:
        for start in range(0, len(items), 5000):
            chunk = items[start : start + 5000]
            rows = ", ".join(["(%s, %s)"] * len(chunk))
            params = [p for pk, value in chunk for p in (pk, field.get_db_prep_save(value, connection))]
            cursor.execute(
                f"UPDATE {table} AS t SET {column} = v.val::{value_type} FROM (VALUES {rows}) AS v(id, val) "
                f"WHERE t.{pk_column} = v.id::{pk_type}",
                params,
            )
    return len(items)
