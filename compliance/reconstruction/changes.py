"""What changed after the instant: reclassifications, schema and tag changes, grants, versions, deployments, policy."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from catalog.history import DATASET, DATASET_LEVEL, MODEL_VERSION
from catalog.models import Deployment, ModelVersion
from compliance.reconstruction.evidence import PolicyTimeline
from compliance.reconstruction.inputs import PropagatedRow
from compliance.reconstruction.resolve import iso
from compliance.reconstruction.types import Change, DatasetState
from governance.models import Grant, GrantSuspension
from ledger import history

__all__ = ["changes_since"]


def _field_diff(then: list[dict[str, Any]], now: list[dict[str, Any]]) -> dict[str, list[str]]:
    before = {f["name"]: f.get("type", "") for f in then}
    after = {f["name"]: f.get("type", "") for f in now}
    return {
        "added": sorted(set(after) - set(before)),
        "removed": sorted(set(before) - set(after)),
        "retyped": sorted(n for n in set(before) & set(after) if before[n] != after[n]),
    }


def changes_since(
    at: datetime,
    inputs: dict[str, DatasetState],
    mv: ModelVersion,
    deployments: list[Deployment],
    grants: list[Grant],
    propagated: list[PropagatedRow],
    policies: PolicyTimeline,
) -> list[Change]:
    """What differs now from ``at``, each change with the time it happened (oldest first).

    ``grants`` are those the reconstruction shows (``access``), ``propagated`` the inputs' propagated tags still in
    force at ``at`` or later (``propagated_tags``), ``policies`` the versions published by now (``policy_timeline``):
    read once for the document, not again here."""
    changes: list[Change] = []
    ids = list(inputs)
    recorded = history.changes_since_each({DATASET_LEVEL: ids, DATASET: ids, MODEL_VERSION: [mv.pk]}, at)
    for ds_id, rows in recorded[DATASET_LEVEL].items():
        previous = (inputs[ds_id] or {}).get("effective_classification")
        for valid_from, state in rows:
            level = (state or {}).get("effective_classification")
            if level != previous:
                changes.append(
                    {
                        "kind": "reclassified",
                        "dataset": ds_id,
                        "at": iso(valid_from),
                        "from": previous,
                        "to": level,
                    }
                )
                previous = level
    for ds_id, rows in recorded[DATASET].items():
        then_state: DatasetState | dict[str, Any] = inputs.get(ds_id) or {}
        prev_schema = then_state.get("schema", [])
        prev_tags = then_state.get("tags", {})
        prev_tag_view = (prev_tags.get("dataset", []), prev_tags.get("fields", {}))
        prev_level = then_state.get("classification")
        for valid_from, state in rows:
            if state is None:
                changes.append({"kind": "deleted", "dataset": ds_id, "at": iso(valid_from)})
                continue
            diff = _field_diff(prev_schema, state.get("fields", []))
            if any(diff.values()):
                changes.append(
                    {
                        "kind": "schema_changed",
                        "dataset": ds_id,
                        "at": iso(valid_from),
                        "added": diff["added"],
                        "removed": diff["removed"],
                        "retyped": diff["retyped"],
                    }
                )
            tag_view = (
                state.get("tags", []),
                {f["name"]: f["tags"] for f in state.get("fields", []) if f.get("tags")},
            )
            if tag_view != prev_tag_view:
                changes.append(
                    {
                        "kind": "tags_changed",
                        "dataset": ds_id,
                        "at": iso(valid_from),
                        "from": {"dataset": prev_tag_view[0], "fields": prev_tag_view[1]},
                        "to": {"dataset": tag_view[0], "fields": tag_view[1]},
                    }
                )
            level = state.get("classification") or None
            if level != prev_level:
                changes.append(
                    {
                        "kind": "direct_level_changed",
                        "dataset": ds_id,
                        "at": iso(valid_from),
                        "from": prev_level,
                        "to": level,
                    }
                )
            prev_schema, prev_tag_view, prev_level = state.get("fields", []), tag_view, level
    for tagged_id, field, key, _, _, vf, vt in propagated:
        if str(tagged_id) not in inputs:  # as for the recorded changes: the inputs that existed at ``at``
            continue
        if vf > at:
            changes.append(
                {"kind": "tag_propagated", "dataset": str(tagged_id), "field": field or None, "tag": key, "at": iso(vf)}
            )
        if vt is not None and vt > at:
            changes.append(
                {"kind": "tag_withdrawn", "dataset": str(tagged_id), "field": field or None, "tag": key, "at": iso(vt)}
            )
    for g in grants:
        if g.revoked_at is not None and g.revoked_at > at:
            changes.append(
                {
                    "kind": "grant_revoked",
                    "grant": str(g.pk),
                    "dataset": str(g.dataset_id),
                    "at": iso(g.revoked_at),
                    "reason": g.revoke_reason,
                }
            )
    if grants:
        for suspension in GrantSuspension.objects.filter(grant_id__in=[g.pk for g in grants], started_at__gt=at):
            changes.append(
                {
                    "kind": "grant_suspended",
                    "grant": str(suspension.grant_id),
                    "at": iso(suspension.started_at),
                    "level": suspension.level,
                }
            )
    for valid_from, state in recorded[MODEL_VERSION].get(str(mv.pk), []):
        changes.append(
            {
                "kind": "model_version_changed",
                "model_version": str(mv.pk),
                "at": iso(valid_from),
                "state": state,
            }
        )
    for d in deployments:
        if d.deployed_to is not None and d.deployed_to > at:
            changes.append({"kind": "deployment_ended", "deployment": str(d.pk), "at": iso(d.deployed_to)})
    for version, published_at in reversed(policies):  # oldest first
        if published_at > at:
            changes.append({"kind": "policy_changed", "version": version, "at": iso(published_at)})
    changes.sort(key=lambda c: (c["at"] or "", c["kind"]))
    return changes
