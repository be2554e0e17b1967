"""Point-in-time reconstruction: what was in effect when a model produced a result (docs/compliance.md).

``reconstruct(at=T, ...)`` answers "why did model M give result R at T, and was every step allowed?" from
history alone (``ledger.history`` rows, lineage and grant intervals, immutable policy versions, the audit
log), so the answer for T does not depend on what changed after T; what did change after T is listed
separately under ``changes_since``.

Read-only; callers check that the asker is a compliance officer or an admin (``services.compliance``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils import timezone

from catalog.history import DATASET, DATASET_LEVEL, DEPLOYMENT, MODEL, MODEL_VERSION
from catalog.models import Dataset, Deployment, ModelVersion, ResultRecord
from governance.authorization import DecisionQuery, decide_many
from governance.models import Grant, GrantSuspension, PolicyVersion
from governance.selectors import grants_valid_at
from ledger import history
from ledger.models import AuditEvent
from lineage.graph import get_backend
from lineage.models import DatasetVersion, Job, PropagatedTag, Run, RunState
from steward.errors import NotFound, ValidationFailed

__all__ = ["Query", "reconstruct"]

GRANT = "governance.grant"
ACCESS_REQUEST = "governance.access_request"
AUDIT_LIMIT = 500


@dataclass(frozen=True)
class Query:
    """Either a result record, or a model version and an instant."""

    result: UUID | None = None
    model_version: UUID | None = None
    at: datetime | None = None
    lineage_depth: int = 5


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _resolve(query: Query, now: datetime) -> tuple[datetime, ResultRecord | None, ModelVersion, list[Deployment]]:
    if (query.result is None) == (query.model_version is None):
        raise ValidationFailed.one("result", "Give either result, or model_version with at.", "one_of")
    if query.result is not None:
        if query.at is not None:
            raise ValidationFailed.one("at", "A result fixes the time; leave at out.", "not_allowed")
        record = ResultRecord.objects.select_related("deployment").filter(pk=query.result).first()
        if record is None:
            raise NotFound(f"No result record {query.result}.")
        mv = ModelVersion.objects.select_related("model").get(pk=record.model_version_id)
        return record.produced_at, record, mv, [record.deployment] if record.deployment else []
    if query.at is None:
        raise ValidationFailed.one(
            "at", "Required with model_version (an ISO 8601 time with a UTC offset).", "required"
        )
    if timezone.is_naive(query.at):
        raise ValidationFailed.one("at", "The time has no UTC offset; add one (e.g. Z or +01:00).", "naive_datetime")
    if query.at > now:
        raise ValidationFailed.one("at", "The time is in the future; nothing is known about it yet.", "future_datetime")
    mv = ModelVersion.objects.select_related("model").filter(pk=query.model_version).first()
    if mv is None:
        raise NotFound(f"No model version {query.model_version}.")
    if history.as_of(MODEL_VERSION, mv.pk, query.at) is None and mv.created_at > query.at:
        raise ValidationFailed.one(
            "at", f"Model version {mv} was registered only at {mv.created_at.isoformat()}.", "before_existence"
        )
    serving = history.active_at(
        Deployment.objects.filter(model_version=mv), query.at, start="deployed_from", end="deployed_to"
    )
    return query.at, None, mv, list(serving.order_by("environment"))


def _dataset_states(ids: list[str], at: datetime) -> dict[str, dict[str, Any]]:
    """Each dataset as it was at ``at``: attributes and schema (history), effective level, tags, version."""
    states = history.as_of_many(DATASET, ids, at)
    levels = history.as_of_many(DATASET_LEVEL, ids, at)
    propagated: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for ds_id, field, key, origin_id, origin_field in (
        history.active_at(PropagatedTag.objects.filter(dataset_id__in=ids), at)
        .order_by("tag__key", "field")
        .values_list("dataset_id", "field", "tag__key", "origin_dataset_id", "origin_field")
    ):
        propagated[str(ds_id)].append(
            {"tag": key, "field": field or None, "from": {"dataset": str(origin_id), "field": origin_field or None}}
        )
    versions: dict[str, dict[str, Any]] = {}
    for ds_id, version, run_id, created_at in (
        DatasetVersion.objects.filter(dataset_id__in=ids, created_at__lte=at)
        .order_by("dataset_id", "-created_at", "-pk")
        .values_list("dataset_id", "version", "run_id", "created_at")
    ):
        versions.setdefault(
            str(ds_id), {"version": version, "run": str(run_id) if run_id else None, "created_at": _iso(created_at)}
        )
    found: dict[str, dict[str, Any]] = {}
    for ds_id in ids:
        state = states.get(ds_id)
        if state is None:
            continue
        field_tags = {f["name"]: f["tags"] for f in state.get("fields", []) if f.get("tags")}
        found[ds_id] = {
            "namespace": state["namespace"],
            "name": state["name"],
            "description": state["description"],
            "owners": state["owners"],
            "classification": state["classification"] or None,
            "effective_classification": levels.get(ds_id, {}).get("effective_classification"),
            "schema": [
                {k: f[k] for k in ("name", "type", "ordinal", "classification", "description")}
                for f in state.get("fields", [])
            ],
            "tags": {"dataset": state["tags"], "fields": field_tags, "propagated": propagated.get(ds_id, [])},
            "version": versions.get(ds_id),
        }
    return found


def _training(mv: ModelVersion, state: dict[str, Any] | None) -> tuple[Run | None, datetime]:
    """The training run and its time (completion, else the last state change, else the version's creation)."""
    run_id = (state or {}).get("training_run_id") or (str(mv.training_run_id) if mv.training_run_id else None)
    run = Run.objects.select_related("job").filter(pk=run_id).first() if run_id else None
    if run is None:
        return None, mv.created_at
    if run.state == RunState.COMPLETE and run.ended_at:
        return run, run.ended_at
    return run, run.state_at


def _access(user_name: str | None, dataset_ids: list[str], at: datetime) -> dict[str, dict[str, Any]]:
    """For each input, the decision for the training user at ``at`` and every grant they held on it by then."""
    user = get_user_model().objects.filter(username=user_name).first() if user_name else None
    if user is None:
        return {d: {"allowed": False, "reason": "unknown_subject", "grants": []} for d in dataset_ids}
    decisions = decide_many(
        [DecisionQuery(user_id=user.pk, dataset_id=UUID(d), at=at) for d in dataset_ids], now=timezone.now()
    )
    grants = list(
        Grant.objects.filter(user=user, dataset_id__in=dataset_ids, created_at__lte=at).order_by("valid_from")
    )
    # Validity at ``at`` by the one rule decisions and the data plane use (window, revocation, suspension periods).
    valid = set(grants_valid_at(at=at, user_id=user.pk, dataset_ids=dataset_ids).values_list("pk", flat=True))
    grant_states = history.as_of_many(GRANT, [g.pk for g in grants], at)
    request_ids = {str(g.request_id) for g in grants if g.request_id}
    requests = history.as_of_many(ACCESS_REQUEST, request_ids, at)
    by_dataset: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for g in grants:
        revoked = g.revoked_at is not None and g.revoked_at <= at
        in_window = g.valid_from <= at < g.valid_until
        by_dataset[str(g.dataset_id)].append(
            {
                "id": str(g.pk),
                "valid_from": _iso(g.valid_from),
                "valid_until": _iso(g.valid_until),
                "approved_level": g.approved_level,
                "policy_version": g.policy_version_id,
                "valid_at_training": g.pk in valid,
                "revoked_by_then": revoked,
                "suspended_then": in_window and not revoked and g.pk not in valid,
                "state_then": grant_states.get(str(g.pk)),
                "request": (
                    {"id": str(g.request_id), "state_then": requests.get(str(g.request_id))} if g.request_id else None
                ),
            }
        )
    return {
        d: {
            "allowed": decision.allowed,
            "reason": decision.reason,
            "grant": str(decision.grant_id) if decision.grant_id else None,
            "grants": by_dataset.get(d, []),
        }
        for d, decision in zip(dataset_ids, decisions, strict=True)
    }


def _lineage(roots: list[str], at: datetime, depth: int) -> dict[str, Any]:
    """The upstream lineage of the training inputs as it stood at ``at`` (edges active then)."""
    backend = get_backend()
    datasets: set[UUID] = {UUID(r) for r in roots}
    edges: set[tuple[UUID, UUID, UUID]] = set()
    truncated = False
    for root in roots:
        walk = backend.walk(
            root=UUID(root),
            direction="upstream",
            depth=depth,
            columns=False,
            at=at,
            limit=settings.STEWARD_LINEAGE_DEFAULT_NODES,
        )
        datasets.update(walk.datasets)
        edges.update(walk.edges)
        truncated = truncated or walk.truncated
    names = {
        pk: (ns, n) for pk, ns, n in Dataset.objects.filter(pk__in=datasets).values_list("pk", "namespace", "name")
    }
    jobs = {
        pk: (ns, n)
        for pk, ns, n in Job.objects.filter(pk__in={j for _, _, j in edges}).values_list("pk", "namespace", "name")
    }
    return {
        "depth": depth,
        "truncated": truncated,
        "datasets": sorted(
            (
                {"id": str(pk), "namespace": names.get(pk, ("", ""))[0], "name": names.get(pk, ("", ""))[1]}
                for pk in datasets
            ),
            key=lambda d: (d["namespace"], d["name"], d["id"]),
        ),
        "edges": sorted(
            (
                {
                    "source": str(s),
                    "target": str(t),
                    "job": {"id": str(j), "namespace": jobs.get(j, ("", ""))[0], "name": jobs.get(j, ("", ""))[1]},
                }
                for s, t, j in edges
            ),
            key=lambda e: (e["source"], e["target"], e["job"]["id"]),
        ),
    }


def _policy(at: datetime) -> dict[str, Any] | None:
    policy = PolicyVersion.objects.filter(created_at__lte=at).order_by("-version").first()
    if policy is None:
        return None
    return {"version": policy.version, "published_at": _iso(policy.created_at), "document": policy.document()}


def _audit(target_ids: set[str], at: datetime) -> dict[str, Any]:
    qs = AuditEvent.objects.filter(target_id__in=sorted(target_ids), at__lte=at)
    total = qs.count()
    events = list(qs.order_by("-seq")[:AUDIT_LIMIT])
    return {
        "total": total,
        "shown": len(events),
        "events": [
            {
                "seq": e.seq,
                "at": _iso(e.at),
                "actor": e.actor_name,
                "action": e.action,
                "target_type": e.target_type,
                "target_id": e.target_id,
                "target": e.target_repr,
                "reason": e.reason,
                "hash": e.hash,
            }
            for e in reversed(events)
        ],
    }


def _field_diff(then: list[dict[str, Any]], now: list[dict[str, Any]]) -> dict[str, list[str]]:
    before = {f["name"]: f.get("type", "") for f in then}
    after = {f["name"]: f.get("type", "") for f in now}
    return {
        "added": sorted(set(after) - set(before)),
        "removed": sorted(set(before) - set(after)),
        "retyped": sorted(n for n in set(before) & set(after) if before[n] != after[n]),
    }


def _changes_since(
    at: datetime,
    inputs: dict[str, dict[str, Any]],
    mv: ModelVersion,
    deployments: list[Deployment],
    grant_ids: list[str],
    now: datetime,
) -> list[dict[str, Any]]:
    """What differs now from ``at``, each change with the time it happened (oldest first)."""
    changes: list[dict[str, Any]] = []
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
                        "at": _iso(row.valid_from),
                        "from": previous,
                        "to": level,
                    }
                )
                previous = level
    for ds_id, rows in history.changes_since(DATASET, ids, at).items():
        previous = inputs.get(ds_id) or {}
        prev_schema = previous.get("schema", [])
        prev_tags = previous.get("tags", {})
        prev_tag_view = (prev_tags.get("dataset", []), prev_tags.get("fields", {}))
        prev_level = previous.get("classification")
        for row in rows:
            if row.state is None:
                changes.append({"kind": "deleted", "dataset": ds_id, "at": _iso(row.valid_from)})
                continue
            diff = _field_diff(prev_schema, row.state.get("fields", []))
            if any(diff.values()):
                changes.append({"kind": "schema_changed", "dataset": ds_id, "at": _iso(row.valid_from), **diff})
            tag_view = (
                row.state.get("tags", []),
                {f["name"]: f["tags"] for f in row.state.get("fields", []) if f.get("tags")},
            )
            if tag_view != prev_tag_view:
                changes.append(
                    {
                        "kind": "tags_changed",
                        "dataset": ds_id,
                        "at": _iso(row.valid_from),
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
                        "at": _iso(row.valid_from),
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
        ds_id, field, key, vf, vt = p
        if vf > at:
            changes.append(
                {"kind": "tag_propagated", "dataset": str(ds_id), "field": field or None, "tag": key, "at": _iso(vf)}
            )
        if vt is not None and vt > at:
            changes.append(
                {"kind": "tag_withdrawn", "dataset": str(ds_id), "field": field or None, "tag": key, "at": _iso(vt)}
            )
    for g in Grant.objects.filter(pk__in=grant_ids):
        if g.revoked_at is not None and g.revoked_at > at:
            changes.append(
                {
                    "kind": "grant_revoked",
                    "grant": str(g.pk),
                    "dataset": str(g.dataset_id),
                    "at": _iso(g.revoked_at),
                    "reason": g.revoke_reason,
                }
            )
    for s in GrantSuspension.objects.filter(grant_id__in=grant_ids, started_at__gt=at):
        changes.append(
            {"kind": "grant_suspended", "grant": str(s.grant_id), "at": _iso(s.started_at), "level": s.level}
        )
    for row in history.changes_since(MODEL_VERSION, [mv.pk], at).get(str(mv.pk), []):
        changes.append(
            {
                "kind": "model_version_changed",
                "model_version": str(mv.pk),
                "at": _iso(row.valid_from),
                "state": row.state,
            }
        )
    for d in deployments:
        if d.deployed_to is not None and d.deployed_to > at:
            changes.append({"kind": "deployment_ended", "deployment": str(d.pk), "at": _iso(d.deployed_to)})
    for policy in PolicyVersion.objects.filter(created_at__gt=at, created_at__lte=now).order_by("version"):
        changes.append({"kind": "policy_changed", "version": policy.version, "at": _iso(policy.created_at)})
    changes.sort(key=lambda c: (c["at"] or "", c["kind"]))
    return changes


def _history_start(kind: str, key: Any) -> str:
    """When history of an entity begins (it may have existed before Steward recorded it)."""
    rows = history.timeline(kind, key)
    return _iso(rows[0].valid_from) if rows else "no recorded time"


def _names(inputs: list[dict[str, Any]]) -> dict[str, str]:
    """Each input's name: as recorded at training time or at T, else as it is now, else its id."""
    names = {
        item["dataset"]: state["name"]
        for item in inputs
        if (state := item["at_training"] or item["at_time"]) is not None
    }
    missing = [item["dataset"] for item in inputs if item["dataset"] not in names]
    names.update((str(pk), name) for pk, name in Dataset.objects.filter(pk__in=missing).values_list("pk", "name"))
    return {item["dataset"]: names.get(item["dataset"], item["dataset"]) for item in inputs}


def reconstruct(query: Query, *, now: datetime | None = None) -> dict[str, Any]:
    """The reconstruction document (plain JSON values) for ``query``; 400/404 on bad or unknown input."""
    now = now or timezone.now()
    at, record, mv, deployments = _resolve(query, now)
    mv_state = history.as_of(MODEL_VERSION, mv.pk, at)
    model_state = history.as_of(MODEL, mv.model_id, at)
    deployment_states = history.as_of_many(DEPLOYMENT, [d.pk for d in deployments], at)
    run, trained_at = _training(mv, mv_state)
    input_ids = sorted(str(i) for i in (run.inputs if run else []))
    at_training = _dataset_states(input_ids, trained_at)
    at_time = _dataset_states(input_ids, at) if at != trained_at else at_training
    trained_by = (mv_state or {}).get("trained_by")
    access = _access(trained_by, input_ids, trained_at)
    grant_ids = [g["id"] for a in access.values() for g in a["grants"]]
    request_ids = {g["request"]["id"] for a in access.values() for g in a["grants"] if g["request"]}
    targets = {str(mv.pk), str(mv.model_id), *input_ids, *grant_ids, *request_ids, *(str(d.pk) for d in deployments)}
    if record is not None:
        targets.add(str(record.pk))
    if run is not None:
        targets.update({str(run.pk), str(run.job_id)})
    inputs = [
        {
            "dataset": ds_id,
            "at_training": at_training.get(ds_id),
            "at_time": at_time.get(ds_id),
            "access": access[ds_id],
        }
        for ds_id in input_ids
    ]
    findings = []
    if mv_state is None:
        findings.append(
            f"Steward holds no state of model version {mv} at {_iso(at)}: its history starts at "
            f"{_history_start(MODEL_VERSION, mv.pk)}."
        )
    if run is None:
        findings.append("The model version has no recorded training run: its inputs cannot be shown.")
    names = _names(inputs)
    for item in inputs:
        if item["at_training"] is None:
            findings.append(
                f"Steward holds no state of {names[item['dataset']]} at training time ({_iso(trained_at)}): "
                f"its history starts at {_history_start(DATASET, item['dataset'])}."
            )
        if not item["access"]["allowed"]:
            name = names[item["dataset"]]
            who = trained_by or "The training user"
            reason = item["access"]["reason"]
            findings.append(f"{who} held no valid grant on {name} at training time ({reason}).")
    if record is not None and record.deployment_id is None:
        findings.append("The result is not linked to a deployment.")
    return {
        "at": _iso(at),
        "result": (
            {
                "id": str(record.pk),
                "produced_at": _iso(record.produced_at),
                "input_ref": record.input_ref,
                "output_digest": record.output_digest,
                "received_at": _iso(record.received_at),
            }
            if record is not None
            else None
        ),
        "model": {"id": str(mv.model_id), "state": model_state},
        "model_version": {"id": str(mv.pk), "state": mv_state},
        "deployments": [{"id": str(d.pk), "state": deployment_states.get(str(d.pk))} for d in deployments],
        "training": {
            "run": (
                {
                    "id": str(run.pk),
                    "job": {"id": str(run.job_id), "namespace": run.job.namespace, "name": run.job.name},
                    "state": run.state,
                    "started_at": _iso(run.started_at),
                    "ended_at": _iso(run.ended_at),
                }
                if run is not None
                else None
            ),
            "at": _iso(trained_at),
            "trained_by": trained_by,
            "inputs": inputs,
        },
        "lineage": _lineage(input_ids, trained_at, query.lineage_depth) if input_ids else None,
        "policy": {"at_time": _policy(at), "at_training": _policy(trained_at)},
        "audit": _audit(targets, at),
        "allowed": run is not None and all(item["access"]["allowed"] for item in inputs),
        "findings": findings,
        "changes_since": _changes_since(at, at_time, mv, deployments, grant_ids, now),
    }
