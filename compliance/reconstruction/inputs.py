"""The training inputs as recorded at an instant (attributes, schema, levels, tags, versions) and their names."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from django.db.models import Q

from catalog.history import DATASET, DATASET_LEVEL
from catalog.models import Dataset
from compliance.reconstruction.resolve import iso
from compliance.reconstruction.types import DatasetState, DatasetVersionView, InputItem
from ledger import history
from lineage.models import DatasetVersion, PropagatedTag

__all__ = ["dataset_states", "history_start", "input_names"]


def dataset_states(ids: list[str], instants: list[datetime]) -> dict[datetime, dict[str, DatasetState]]:
    """Each dataset as it was at each instant: attributes and schema (history), effective level, tags, version.

    Three queries whatever the number of instants (a reconstruction asks for training time and the result's time)."""
    lookups = [(kind, ds_id, at) for at in instants for ds_id in ids for kind in (DATASET, DATASET_LEVEL)]
    recorded = history.as_of_each(lookups)
    first, last = min(instants), max(instants)
    propagated_rows = list(
        PropagatedTag.objects.filter(dataset_id__in=ids, valid_from__lte=last)
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gt=first))
        .order_by("tag__key", "field")
        .values_list("dataset_id", "field", "tag__key", "origin_dataset_id", "origin_field", "valid_from", "valid_to")
    )
    version_rows = list(
        DatasetVersion.objects.filter(dataset_id__in=ids, created_at__lte=last)
        .order_by("dataset_id", "-created_at", "-pk")
        .values_list("dataset_id", "version", "run_id", "created_at")
    )
    return {
        at: _states_at(ids, at, recorded, propagated_rows, version_rows) for at in dict.fromkeys(instants)
    }


def _states_at(
    ids: list[str],
    at: datetime,
    recorded: dict[history.Lookup, dict[str, Any]],
    propagated_rows: list[tuple[Any, ...]],
    version_rows: list[tuple[Any, ...]],
) -> dict[str, DatasetState]:
    propagated: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for ds_id, field, key, origin_id, origin_field, valid_from, valid_to in propagated_rows:
        if valid_from <= at and (valid_to is None or valid_to > at):  # history.active_at, on rows already read
            propagated[str(ds_id)].append(
                {"tag": key, "field": field or None, "from": {"dataset": str(origin_id), "field": origin_field or None}}
            )
    versions: dict[str, DatasetVersionView] = {}
    for ds_id, version, run_id, created_at in version_rows:  # newest first per dataset
        if created_at <= at:
            versions.setdefault(
                str(ds_id), {"version": version, "run": str(run_id) if run_id else None, "created_at": iso(created_at)}
            )
    found: dict[str, DatasetState] = {}
    for ds_id in ids:
        state = recorded.get((DATASET, ds_id, at))
        if state is None:
            continue
        field_tags = {f["name"]: f["tags"] for f in state.get("fields", []) if f.get("tags")}
        found[ds_id] = {
            "namespace": state["namespace"],
            "name": state["name"],
            "description": state["description"],
            "owners": state["owners"],
            "classification": state["classification"] or None,
            "effective_classification": (recorded.get((DATASET_LEVEL, ds_id, at)) or {}).get(
                "effective_classification"
            ),
            "schema": [
                {k: f[k] for k in ("name", "type", "ordinal", "classification", "description")}
                for f in state.get("fields", [])
            ],
            "tags": {"dataset": state["tags"], "fields": field_tags, "propagated": propagated.get(ds_id, [])},
            "version": versions.get(ds_id),
        }
    return found


def history_start(kind: str, key: Any) -> str:
    """When history of an entity begins (it may have existed before Steward recorded it)."""
    rows = history.timeline(kind, key)
    return rows[0].valid_from.isoformat() if rows else "no recorded time"


def input_names(inputs: list[InputItem]) -> dict[str, str]:
    """Each input's name: as recorded at training time or at T, else as it is now, else its id."""
    names = {
        item["dataset"]: state["name"]
        for item in inputs
        if (state := item["at_training"] or item["at_time"]) is not None
    }
    missing = [item["dataset"] for item in inputs if item["dataset"] not in names]
    names.update((str(pk), name) for pk, name in Dataset.objects.filter(pk__in=missing).values_list("pk", "name"))
    return {item["dataset"]: names.get(item["dataset"], item["dataset"]) for item in inputs}
