"""PostgreSQL catalogs: schemas, tables, views, materialized views, columns, comments, row estimates, keys, and
lineage from each view's SQL (``openlineage-sql``), in a fixed number of catalog queries whatever the size.

Config: ``host``, ``port`` (5432), ``database``, ``schemas`` (only these; default all but the system ones),
``exclude_schemas``, ``sslmode``, ``connect_timeout`` (10 s). Secret: ``user``, ``password``.
Datasets are named as OpenLineage names them: namespace ``postgres://host:port``, name ``database.schema.table``.
Primary and foreign keys are relations (``properties``), never lineage; each view or materialized view becomes
a COMPLETE RunEvent of a job named after it (``database.schema.view``) reading the relations its SQL reads.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import openlineage_sql
import psycopg

from connectors.sources.base import (
    ColumnSnapshot,
    DatasetSnapshot,
    Progress,
    SourceError,
    SourceSnapshot,
    column_origin,
)

__all__ = ["PostgresReader", "namespace_of"]

PRODUCER = "https://github.com/steward/steward/tree/main/connectors/sources/postgres.py"
_SYSTEM_SCHEMAS = ("pg_catalog", "information_schema")
_KINDS = {"r": "table", "p": "table", "v": "view", "m": "materialized_view", "f": "foreign_table"}

_RELATIONS = """
SELECT c.oid, n.nspname, c.relname, c.relkind, d.description, c.reltuples::bigint,
       CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid, false) END
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_description d ON d.objoid = c.oid AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND NOT c.relispartition
  AND n.nspname <> ALL(%(system)s) AND n.nspname NOT LIKE 'pg\\_toast%%' AND n.nspname NOT LIKE 'pg\\_temp\\_%%'
  AND (cardinality(%(include)s::text[]) = 0 OR n.nspname = ANY(%(include)s::text[]))
  AND n.nspname <> ALL(%(exclude)s::text[])
ORDER BY n.nspname, c.relname
"""

_COLUMNS = """
SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod), a.attnum, NOT a.attnotnull, d.description
FROM pg_attribute a
LEFT JOIN pg_description d ON d.objoid = a.attrelid AND d.classoid = 'pg_class'::regclass AND d.objsubid = a.attnum
WHERE a.attrelid = ANY(%(oids)s::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""

_CONSTRAINTS = """
SELECT con.conrelid, con.contype, con.conname,
       ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(num, i)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num ORDER BY k.i),
       fn.nspname, fc.relname,
       ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(num, i)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num ORDER BY k.i)
FROM pg_constraint con
LEFT JOIN pg_class fc ON fc.oid = con.confrelid
LEFT JOIN pg_namespace fn ON fn.oid = fc.relnamespace
WHERE con.contype IN ('p', 'f') AND con.conrelid = ANY(%(oids)s::oid[])
ORDER BY con.conrelid, con.conname
"""


def namespace_of(config: dict[str, Any]) -> str:
    return f"postgres://{config.get('host') or 'localhost'}:{int(config.get('port') or 5432)}"


def _names(value: Any, field: str) -> list[str]:
    if value in (None, ""):
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SourceError(f"config.{field} must be a list of schema names.")
    return value


class PostgresReader:
    kind = "postgres"
    description_rank = 10  # table and column comments: below written documentation (dbt)

    def read(self, config: dict[str, Any], secret: dict[str, Any], progress: Progress | None = None) -> SourceSnapshot:
        if not config.get("database"):
            raise SourceError("config.database is required: the database to crawl.")
        include = _names(config.get("schemas"), "schemas")
        exclude = _names(config.get("exclude_schemas"), "exclude_schemas")
        namespace = namespace_of(config)
        report = progress or (lambda done, total, what: None)
        report(0, None, "connecting")
        try:
            conn = psycopg.connect(
                host=config.get("host") or "localhost",
                port=int(config.get("port") or 5432),
                dbname=config["database"],
                user=secret.get("user") or config.get("user"),
                password=secret.get("password"),
                sslmode=config.get("sslmode") or "prefer",
                connect_timeout=int(config.get("connect_timeout") or 10),
                application_name="steward-crawler",
                autocommit=False,
            )
        except psycopg.OperationalError as exc:
            first = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise SourceError(
                f"Cannot connect to {namespace}/{config['database']}: {first}. "
                "Check the source's host, port, database, user and password, and that the server accepts this host."
            ) from None
        try:
            with conn:
                conn.read_only = True
                with conn.cursor() as cur:
                    # An empty search_path makes pg_get_viewdef qualify every relation with its schema.
                    cur.execute("SET LOCAL search_path TO ''")
                    cur.execute("SELECT current_database()")
                    row = cur.fetchone()
                    database = row[0] if row else config["database"]
                    cur.execute(_RELATIONS, {"system": list(_SYSTEM_SCHEMAS), "include": include, "exclude": exclude})
                    relations = cur.fetchall()
                    report(len(relations), None, "relations")
                    oids = [r[0] for r in relations]
                    cur.execute(_COLUMNS, {"oids": oids})
                    columns = cur.fetchall()
                    report(len(relations) + len(columns), None, "columns")
                    cur.execute(_CONSTRAINTS, {"oids": oids})
                    constraints = cur.fetchall()
        except psycopg.Error as exc:
            raise SourceError(
                f"Reading the catalog of {namespace}/{config['database']} failed: {str(exc).strip()[:500]}. "
                "The crawler's user needs to connect and read pg_catalog (any user can)."
            ) from None
        finally:
            conn.close()
        return _snapshot(namespace, database, relations, columns, constraints, report)


def _snapshot(
    namespace: str,
    database: str,
    relations: list[tuple],
    columns: list[tuple],
    constraints: list[tuple],
    report: Progress,
) -> SourceSnapshot:
    by_rel: dict[int, list[ColumnSnapshot]] = {}
    for relid, name, type_, ordinal, nullable, description in columns:
        by_rel.setdefault(relid, []).append(
            ColumnSnapshot(
                name=name, type=type_, ordinal=int(ordinal), nullable=nullable, description=description or ""
            )
        )
    keys: dict[int, dict[str, Any]] = {}
    for relid, kind, conname, cols, ref_schema, ref_table, ref_cols in constraints:
        props = keys.setdefault(relid, {})
        if kind == "p":
            props["primary_key"] = list(cols)
        else:
            props.setdefault("foreign_keys", []).append(
                {
                    "name": conname,
                    "columns": list(cols),
                    "references": {
                        "namespace": namespace,
                        "name": f"{database}.{ref_schema}.{ref_table}",
                        "columns": list(ref_cols),
                    },
                }
            )
    snapshot = SourceSnapshot()
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    for done, (oid, schema, name, relkind, description, reltuples, viewdef) in enumerate(relations, 1):
        kind = _KINDS[relkind]
        qualified = f"{database}.{schema}.{name}"
        properties: dict[str, Any] = {"schema": schema, **keys.get(oid, {})}
        if relkind in ("r", "p", "m", "f"):
            # reltuples is -1 before the first VACUUM or ANALYZE (PostgreSQL 14+): unknown, not empty.
            properties["row_estimate"] = int(reltuples) if reltuples is not None and reltuples >= 0 else None
        if viewdef:
            properties["view_definition"] = viewdef.strip()
        snapshot.datasets.append(
            DatasetSnapshot(
                namespace=namespace,
                name=qualified,
                kind=kind,
                description=description or "",
                columns=tuple(by_rel.get(oid, ())),
                properties=properties,
            )
        )
        if viewdef:
            event, warning = view_event(namespace, database, schema, name, viewdef, now)
            if event is not None:
                snapshot.lineage_events.append(event)
            if warning:
                snapshot.warnings.append(warning)
        if done % 500 == 0:
            report(done, len(relations), "lineage")
    report(len(relations), len(relations), "read")
    return snapshot


def view_event(
    namespace: str, database: str, schema: str, view: str, sql: str, event_time: str
) -> tuple[dict[str, Any] | None, str]:
    """The OpenLineage COMPLETE event of the job named after a view: its SQL's inputs to the view, with the
    columnLineage facet. Returns ``(event, warning)``; a definition the parser cannot read gives a warning."""
    qualified = f"{database}.{schema}.{view}"
    try:
        meta = openlineage_sql.parse([sql], dialect="postgres", default_schema=schema)
    except Exception as exc:  # the parser raises its own error types from Rust
        return None, f"{qualified}: the view's SQL could not be parsed for lineage ({str(exc)[:200]})."
    if meta is None:
        return None, f"{qualified}: the view's SQL could not be parsed for lineage."
    warning = ""
    if meta.errors:
        warning = f"{qualified}: partial lineage ({'; '.join(str(e.message) for e in meta.errors)[:300]})."

    def identity(table: Any) -> str:
        return f"{table.database or database}.{table.schema or schema}.{table.name}"

    inputs = sorted({identity(t) for t in meta.in_tables} - {qualified})
    fields: dict[str, dict[str, Any]] = {}
    for column in meta.column_lineage:
        resolved = {
            (column_origin(identity(c.origin), c.origin.name, inputs), c.name)
            for c in column.lineage
            if c.origin is not None and c.name
        }
        sources = sorted((n, f) for n, f in resolved if n)  # an origin no input is meant by is dropped
        if sources:
            fields[column.descendant.name] = {
                "inputFields": [{"namespace": namespace, "name": n, "field": f} for n, f in sources]
            }
    output: dict[str, Any] = {"namespace": namespace, "name": qualified, "facets": {}}
    if fields:
        output["facets"]["columnLineage"] = {
            "_producer": PRODUCER,
            "_schemaURL": "https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json",
            "fields": fields,
        }
    event = {
        "eventType": "COMPLETE",
        "eventTime": event_time,
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/definitions/RunEvent",
        "run": {"runId": str(uuid.uuid4()), "facets": {}},
        "job": {
            "namespace": namespace,
            "name": qualified,
            "facets": {
                "sql": {
                    "_producer": PRODUCER,
                    "_schemaURL": "https://openlineage.io/spec/facets/1-1-0/SQLJobFacet.json",
                    "query": sql.strip(),
                },
                "jobType": {
                    "_producer": PRODUCER,
                    "_schemaURL": "https://openlineage.io/spec/facets/2-0-3/JobTypeJobFacet.json",
                    "processingType": "BATCH",
                    "integration": "POSTGRES",
                    "jobType": "VIEW",
                },
            },
        },
        "inputs": [{"namespace": namespace, "name": n, "facets": {}} for n in inputs],
        "outputs": [output],
    }
    return event, warning
