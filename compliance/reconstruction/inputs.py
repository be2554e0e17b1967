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

__all__ = ["PropagatedRow", "dataset_states", "history_start", "input_names", "propagated_tags"]


PropagatedRow = tuple[Any, str, str, Any, str, datetime, datetime | None]
"""A propagated tag's interval: dataset id, field, tag key, origin dataset id, origin field, valid from, to."""


def propagated_tags(ids: list[str], since: datetime) -> list[PropagatedRow]:
    """The propagated tags of these datasets that were still in force at or after ``since`` (in tag key and field
    order): what ``dataset_states`` shows at any later instant and ``changes_since`` lists as added or withdrawn
    after one, read once for both."""
    if not ids:
        return []
    return list(
        PropagatedTag.objects.filter(dataset_id__in=ids)
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gt=since))
        .order_by("tag__key", "field")
        .values_list("dataset_id", "field", "tag__key", "origin_dataset_id", "origin_field", "valid_from", "valid_to")
    )


def dataset_states(
    ids: list[str], instants: list[datetime], propagated: list[PropagatedRow]
) -> dict[datetime, dict[str, DatasetState]]:
    """Each dataset as it was at each instant: attributes and schema (history), effective level, tags, version.

    Two queries whatever the number of instants (a reconstruction asks for training time and the result's time):
    the recorded states at every instant, and the versions written by the last one; ``propagated`` comes from
    ``propagated_tags`` (since the first instant at least). Each instant's answer is sorted out here."""
    if not ids:
        return {at: {} for at in instants}
    recorded = history.as_of_each(
        [(kind, ds_id, at) for at in instants for ds_id in ids for kind in (DATASET, DATASET_LEVEL)]
    )
    version_rows = list(
        DatasetVersion.objects.filter(dataset_id__in=ids, created_at__lte=max(instants))
        .order_by("dataset_id", "-created_at", "-pk")
        .values_list("dataset_id", "version", "run_id", "created_at")
    )
    return {at: _states_at(ids, at, recorded, propagated, version_rows) for at in dict.fromkeys(instants)}


def _states_at(
    ids: list[str],
    at: datetime,
    recorded: dict[history.Lookup, dict[str, Any]],
    propagated_rows: list[PropagatedRow],
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
    start = history.first_recorded(kind, key)
    return start.isoformat() if start else "no recorded time"


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
