"""Which OpenLineage facets Steward uses, and trimming the others from events too big to store whole.

Spark's ``spark.logicalPlan`` (and similar) facets can push an event past any sensible size. Such an event is
accepted: the facets Steward does not read are dropped from what is stored, largest first, until the event
fits ``STEWARD_LINEAGE_STORED_EVENT_BYTES``; the lineage is kept and the answer names each dropped facet.
Pure functions over plain JSON (no database).
"""

from __future__ import annotations

import copy
import json
from typing import Any

__all__ = ["USED_DATASET_FACETS", "USED_JOB_FACETS", "USED_RUN_FACETS", "event_trim"]

USED_RUN_FACETS = frozenset({"nominalTime", "parent", "errorMessage", "processing_engine"})
USED_JOB_FACETS = frozenset({"jobType", "documentation", "ownership", "sql", "sourceCodeLocation", "tags"})
USED_DATASET_FACETS = frozenset(
    {
        "schema",
        "version",
        "columnLineage",
        "ownership",
        "documentation",
        "tags",
        "symlinks",
        "dataSource",
        "lifecycleStateChange",
    }
)


def _size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def _unused(event: dict[str, Any]) -> list[tuple[str, dict[str, Any], str]]:
    """(path, facets object, key) of every facet Steward does not use."""
    found: list[tuple[str, dict[str, Any], str]] = []

    def scan(path: str, facets: Any, used: frozenset[str]) -> None:
        if isinstance(facets, dict):
            found.extend((f"{path}.{key}", facets, key) for key in facets if key not in used)

    if isinstance(event.get("run"), dict):
        scan("run.facets", event["run"].get("facets"), USED_RUN_FACETS)
    if isinstance(event.get("job"), dict):
        scan("job.facets", event["job"].get("facets"), USED_JOB_FACETS)
    for side in ("inputs", "outputs"):
        for i, ds in enumerate(event.get(side) or []):
            if isinstance(ds, dict):
                scan(f"{side}[{i}].facets", ds.get("facets"), USED_DATASET_FACETS)
                extra = "inputFacets" if side == "inputs" else "outputFacets"
                scan(f"{side}[{i}].{extra}", ds.get(extra), frozenset())
    if isinstance(event.get("dataset"), dict):
        scan("dataset.facets", event["dataset"].get("facets"), USED_DATASET_FACETS)
    return found


def event_trim(event: Any, limit: int) -> tuple[Any, list[str]]:
    """``event`` unchanged when it fits ``limit`` bytes; else a copy without the unused facets, largest first,
    until it fits (or none is left), and the paths of the dropped facets."""
    if not isinstance(event, dict) or _size(event) <= limit:
        return event, []
    trimmed = copy.deepcopy(event)
    size = _size(trimmed)
    candidates = sorted(_unused(trimmed), key=lambda c: -_size(c[1][c[2]]))
    dropped: list[str] = []
    for path, facets, key in candidates:
        if size <= limit:
            break
        size -= _size(facets[key]) + len(json.dumps(key, ensure_ascii=False).encode()) + 2
        del facets[key]
        dropped.append(path)
    return trimmed, dropped
