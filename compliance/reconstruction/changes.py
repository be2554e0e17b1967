"""What changed after the instant: reclassifications, schema and tag changes, grants, versions, deployments, policy."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Q

from catalog.history import DATASET, DATASET_LEVEL, MODEL_VERSION
from catalog.models import Deployment, ModelVersion
from compliance.reconstruction.resolve import iso
from compliance.reconstruction.types import Change, DatasetState
from governance.models import Grant, GrantSuspension, PolicyVersion
from ledger import history
from lineage.models import PropagatedTag

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
    grant_ids: list[str],
    now: datetime,
) -> list[Change]:
    """What differs now from ``at``, each change with the time it happened (oldest first)."""
    changes: list[Change] = []
    ids = list(inputs)
    level_rows = history.changes_since(DATASET_LEVEL, ids, at)
    for ds_id, rows in level_rows.items():
        previous = (inputs[ds_id] or {}).get("effective_classification")
        for row in rows:
            level = (row.state or {}).get("effective_classification")
            if level != previous:
                changes.append(
                    {
                        "kind": "reclassified",
                        "dataset": ds_id,
                        "at": iso(row.valid_from),
                        "from": previous,
                        "to": level,
                    }
                )
                previous = level
    for ds_id, rows in history.changes_since(DATASET, ids, at).items():
        then_state: DatasetState | dict[str, Any] = inputs.get(ds_id) or {}
        prev_schema = then_state.get("schema", [])
        prev_tags = then_state.get("tags", {})
        prev_tag_view = (prev_tags.get("dataset", []), prev_tags.get("fields", {}))
        prev_level = then_state.get("classification")
        for row in rows:
            if row.state is None:
                changes.append({"kind": "deleted", "dataset": ds_id, "at": iso(row.valid_from)})
                continue
            diff = _field_diff(prev_schema, row.state.get("fields", []))
            if any(diff.values()):
                changes.append(
                    {
                        "kind": "schema_changed",
                        "dataset": ds_id,
                        "at": iso(row.valid_from),
                        "added": diff["added"],
                        "removed": diff["removed"],
                        "retyped": diff["retyped"],
                    }
                )
            tag_view = (
                row.state.get("tags", []),
                {f["name"]: f["tags"] for f in row.state.get("fields", []) if f.get("tags")},
            )
            if tag_view != prev_tag_view:
                changes.append(
                    {
                        "kind": "tags_changed",
                        "dataset": ds_id,
                        "at": iso(row.valid_from),
                        "from": {"dataset": prev_tag_view[0], "fields": prev_tag_view[1]},
                        "to": {"dataset": tag_view[0], "fields": tag_view[1]},
                    }
                )
            level = row.state.get("classification") or None
            if level != prev_level:
                changes.append(
                    {
                        "kind": "direct_level_changed",
                        "dataset": ds_id,
                        "at": iso(row.valid_from),
                        "from": prev_level,
                        "to": level,
                    }
                )
            prev_schema, prev_tag_view, prev_level = row.state.get("fields", []), tag_view, level
    for p in (
        PropagatedTag.objects.filter(dataset_id__in=ids)
        .filter(Q(valid_from__gt=at) | Q(valid_to__gt=at))
        .values_list("dataset_id", "field", "tag__key", "valid_from", "valid_to")
    ):
        tagged_id, field, key, vf, vt = p
        if vf > at:
            changes.append(
                {"kind": "tag_propagated", "dataset": str(tagged_id), "field": field or None, "tag": key, "at": iso(vf)}
            )
        if vt is not None and vt > at:
            changes.append(
                {"kind": "tag_withdrawn", "dataset": str(tagged_id), "field": field or None, "tag": key, "at": iso(vt)}
            )
    for g in Grant.objects.filter(pk__in=grant_ids):
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
    for s in GrantSuspension.objects.filter(grant_id__in=grant_ids, started_at__gt=at):
        changes.append({"kind": "grant_suspended", "grant": str(s.grant_id), "at": iso(s.started_at), "level": s.level})
    for row in history.changes_since(MODEL_VERSION, [mv.pk], at).get(str(mv.pk), []):
        changes.append(
            {
                "kind": "model_version_changed",
                "model_version": str(mv.pk),
                "at": iso(row.valid_from),
                "state": row.state,
            }
        )
    for d in deployments:
        if d.deployed_to is not None and d.deployed_to > at:
            changes.append({"kind": "deployment_ended", "deployment": str(d.pk), "at": iso(d.deployed_to)})
    for policy in PolicyVersion.objects.filter(created_at__gt=at, created_at__lte=now).order_by("version"):
        changes.append({"kind": "policy_changed", "version": policy.version, "at": iso(policy.created_at)})
    changes.sort(key=lambda c: (c["at"] or "", c["kind"]))
    return changes
