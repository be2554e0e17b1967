"""Build OpenLineage events as producers send them (the same shape the openlineage-python client emits)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

NS = "postgres://warehouse:5432"
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
PRODUCER = "https://github.com/steward/tests"


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def dataset(
    name: str,
    *,
    fields: list[str] | None = None,
    columns: dict[str, list[tuple[str, str]]] | None = None,
    namespace: str = NS,
    version: str | None = None,
) -> dict[str, Any]:
    facets: dict[str, Any] = {}
    if fields is not None:
        facets["schema"] = {
            "_producer": PRODUCER,
            "_schemaURL": "https://openlineage.io/spec/facets/1-1-1/SchemaDatasetFacet.json",
            "fields": [{"name": f, "type": "varchar"} for f in fields],
        }
    if columns:
        facets["columnLineage"] = {
            "_producer": PRODUCER,
            "_schemaURL": "https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json",
            "fields": {
                out: {"inputFields": [{"namespace": namespace, "name": src, "field": col} for src, col in sources]}
                for out, sources in columns.items()
            },
        }
    if version:
        facets["version"] = {"_producer": PRODUCER, "datasetVersion": version}
    return {"namespace": namespace, "name": name, "facets": facets}


def run_event(
    job: str,
    event_type: str,
    *,
    inputs: list[dict] = (),
    outputs: list[dict] = (),
    when: str | None = None,
    run_id: str | None = None,
) -> dict[str, Any]:
    return {
        "eventType": event_type,
        "eventTime": when or at(0),
        "run": {"runId": run_id or str(uuid.uuid4()), "facets": {}},
        "job": {"namespace": "etl", "name": job, "facets": {}},
        "inputs": list(inputs),
        "outputs": list(outputs),
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
    }


def complete(
    job: str,
    inputs: list[str],
    outputs: list[str],
    *,
    when: str | None = None,
    run_id: str | None = None,
    columns: dict[str, dict[str, list[tuple[str, str]]]] | None = None,
) -> dict:
    """A COMPLETE event of ``job`` reading ``inputs`` and writing ``outputs`` (names in ``NS``)."""
    columns = columns or {}
    return run_event(
        job,
        "COMPLETE",
        inputs=[dataset(n) for n in inputs],
        outputs=[dataset(n, columns=columns.get(n)) for n in outputs],
        when=when,
        run_id=run_id,
    )
