"""Point-in-time reconstruction: what was in effect when a model produced a result (docs/compliance.md).

``reconstruct(at=T, ...)`` answers "why did model M give result R at T, and was every step allowed?" from
history alone (``ledger.history`` rows, lineage and grant intervals, immutable policy versions, the audit
log), so the answer for T does not depend on what changed after T; what did change after T is listed
separately under ``changes_since``. Each section is built by its own module (``resolve``, ``inputs``,
``access``, ``lineage``, ``evidence``, ``changes``); the document's shape is ``types.Reconstruction``.

Read-only; callers check that the asker is a compliance officer or an admin (``compliance.services``).
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from catalog.history import DATASET, DEPLOYMENT, MODEL, MODEL_VERSION
from compliance.reconstruction.access import access
from compliance.reconstruction.changes import changes_since
from compliance.reconstruction.evidence import audit, policies, policy_timeline
from compliance.reconstruction.inputs import dataset_states, history_start, input_names, propagated_tags
from compliance.reconstruction.lineage import lineage
from compliance.reconstruction.resolve import Query, iso, resolve, training
from compliance.reconstruction.types import InputItem, Reconstruction
from ledger import history

__all__ = ["reconstruct"]


def reconstruct(query: Query, *, now: datetime | None = None) -> Reconstruction:
    """The reconstruction document (plain JSON values) for ``query``; 400/404 on bad or unknown input."""
    now = now or timezone.now()
    at, record, mv, deployments = resolve(query, now)
    states = history.as_of_each(
        [(MODEL_VERSION, mv.pk, at), (MODEL, mv.model_id, at), *((DEPLOYMENT, d.pk, at) for d in deployments)]
    )
    mv_state = states.get((MODEL_VERSION, str(mv.pk), at))
    model_state = states.get((MODEL, str(mv.model_id), at))
    run, trained_at = training(mv, mv_state)
    input_ids = sorted(str(i) for i in (run.inputs if run else []))
    propagated = propagated_tags(input_ids, min(trained_at, at))
    by_instant = dataset_states(input_ids, [trained_at, at], propagated)
    at_training, at_time = by_instant[trained_at], by_instant[at]
    trained_by = (mv_state or {}).get("trained_by")
    access_by_input, grants = access(trained_by, input_ids, trained_at)
    grant_ids = [str(g.pk) for g in grants]
    request_ids = {str(g.request_id) for g in grants if g.request_id}
    targets = {str(mv.pk), str(mv.model_id), *input_ids, *grant_ids, *request_ids, *(str(d.pk) for d in deployments)}
    if record is not None:
        targets.add(str(record.pk))
    if run is not None:
        targets.update({str(run.pk), str(run.job_id)})
    policy_versions = policy_timeline(now)
    policy_at_time, policy_at_training = policies(policy_versions, at, trained_at)
    inputs: list[InputItem] = [
        {
            "dataset": ds_id,
            "at_training": at_training.get(ds_id),
            "at_time": at_time.get(ds_id),
            "access": access_by_input[ds_id],
        }
        for ds_id in input_ids
    ]
    findings = []
    if mv_state is None:
        findings.append(
            f"Steward holds no state of model version {mv} at {iso(at)}: its history starts at "
            f"{history_start(MODEL_VERSION, mv.pk)}."
        )
    if run is None:
        findings.append("The model version has no recorded training run: its inputs cannot be shown.")
    names = input_names(inputs)
    for item in inputs:
        if item["at_training"] is None:
            findings.append(
                f"Steward holds no state of {names[item['dataset']]} at training time ({iso(trained_at)}): "
                f"its history starts at {history_start(DATASET, item['dataset'])}."
            )
        if not item["access"]["allowed"]:
            name = names[item["dataset"]]
            who = trained_by or "The training user"
            reason = item["access"]["reason"]
            findings.append(f"{who} held no valid grant on {name} at training time ({reason}).")
    if record is not None and record.deployment_id is None:
        findings.append("The result is not linked to a deployment.")
    return {
        "at": at.isoformat(),
        "result": (
            {
                "id": str(record.pk),
                "produced_at": iso(record.produced_at),
                "input_ref": record.input_ref,
                "output_digest": record.output_digest,
                "received_at": iso(record.received_at),
            }
            if record is not None
            else None
        ),
        "model": {"id": str(mv.model_id), "state": model_state},
        "model_version": {"id": str(mv.pk), "state": mv_state},
        "deployments": [{"id": str(d.pk), "state": states.get((DEPLOYMENT, str(d.pk), at))} for d in deployments],
        "training": {
            "run": (
                {
                    "id": str(run.pk),
                    "job": {"id": str(run.job_id), "namespace": run.job.namespace, "name": run.job.name},
                    "state": run.state,
                    "started_at": iso(run.started_at),
                    "ended_at": iso(run.ended_at),
                }
                if run is not None
                else None
            ),
            "at": iso(trained_at),
            "trained_by": trained_by,
            "inputs": inputs,
        },
        "lineage": lineage(input_ids, trained_at, query.lineage_depth) if input_ids else None,
        "policy": {"at_time": policy_at_time, "at_training": policy_at_training},
        "audit": audit(targets, at),
        "allowed": run is not None and all(item["access"]["allowed"] for item in inputs),
        "findings": findings,
        "changes_since": changes_since(at, at_time, mv, deployments, grants, propagated, policy_versions),
    }
