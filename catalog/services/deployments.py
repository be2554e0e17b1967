"""Model deployments: which version served in which environment, when (compliance reads them back).

A deployment is a model version serving in an environment over ``[deployed_from, deployed_to)``. In one
environment a model's deployments never overlap: a new one ends the open one at its start (a redeploy), and
one that would start inside or before a closed window is refused. Deployments in different environments
(``prod``, ``staging``) may serve at the same time.

Deployment changes take the model's row lock (``FOR NO KEY UPDATE``); result ingestion takes a share lock on the
models it resolves against (``catalog.services.results``), so a result is never resolved against deployments that
a concurrent redeploy is rewriting. A deployment may not end (or be replaced) before results already recorded as
served by it: those records would then point at a deployment that was not serving.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from catalog import permissions
from catalog.actions import DEPLOYMENT_CREATE, DEPLOYMENT_END
from catalog.history import DEPLOYMENT
from catalog.models import Deployment, MLModel, ModelVersion, ResultRecord
from ledger import audit, history
from steward.errors import Conflict, FieldProblem, PermissionDenied, ValidationFailed
from steward.identity import Actor, user_or_none

__all__ = ["ENVIRONMENT_RE", "deployment_create", "deployment_end"]

ENVIRONMENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


def _iso(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat() if value else "open"


def _check_instant(value: Any, path: str, now: datetime) -> datetime:
    """An aware datetime not after ``now``; else a 400 naming ``path``."""
    if not isinstance(value, datetime):
        raise ValidationFailed.one(path, "Must be a time.", "invalid_datetime")
    if value.tzinfo is None:
        raise ValidationFailed.one(
            path, "Must include a time zone (a UTC offset such as Z or +02:00).", "naive_datetime"
        )
    if value > now:
        raise ValidationFailed.one(path, f"Is in the future (now is {_iso(now)}).", "future_datetime")
    return value


def _lock_model(model_id: UUID) -> None:
    """Serialise deployment changes of one model (and make ingestion wait for them)."""
    list(MLModel.objects.select_for_update(no_key=True).filter(pk=model_id).values_list("pk", flat=True))


def _results_served_after(deployment: Deployment, at: datetime) -> int:
    # (model, produced_at) is indexed; deployments end near "now", so the range scanned is short.
    return ResultRecord.objects.filter(
        model_id=deployment.model_version.model_id, deployment=deployment, produced_at__gte=at
    ).count()


# --- deployments -----------------------------------------------------------------------------------------------------


@transaction.atomic
def deployment_create(
    *,
    actor: Actor,
    model_version: ModelVersion,
    environment: str,
    deployed_from: datetime | None = None,
    endpoint: str = "",
    now: datetime | None = None,
) -> Deployment:
    """Deploy ``model_version`` in ``environment`` from ``deployed_from`` (default now; never in the future).

    The model's open deployment in that environment, if any, ends at the new one's start (a redeploy). A start at
    or before the start of the open deployment, or before the end of a closed one there, is a 409.
    """
    model = model_version.model
    if not permissions.can_edit_asset(actor, model):
        raise PermissionDenied(f"You may not deploy model {model.name}; ask one of its owners.")
    now = now or timezone.now()
    start = _check_instant(deployed_from or now, "deployed_from", now)
    if not isinstance(environment, str) or not ENVIRONMENT_RE.match(environment):
        raise ValidationFailed.one(
            "environment", "Use letters, digits, '.', '_' or '-' (at most 64), e.g. prod or eu-staging.", "invalid"
        )
    _lock_model(model.pk)
    same_env = list(
        Deployment.objects.select_related("model_version").filter(
            model_version__model_id=model.pk, environment=environment
        )
    )
    blocking = [
        d for d in same_env if d.deployed_from >= start or (d.deployed_to is not None and d.deployed_to > start)
    ]
    if blocking:
        last = max(blocking, key=lambda d: d.deployed_from)
        message = (
            f"Deployment {last.pk} of {model.name}:{last.model_version.version} in {environment} serves from "
            f"{_iso(last.deployed_from)} to {_iso(last.deployed_to)}; a new deployment there must start after "
            f"{_iso(last.deployed_to or last.deployed_from)}."
        )
        raise Conflict(message, problems=[FieldProblem("deployed_from", message, "overlap")])
    previous = next((d for d in same_env if d.deployed_to is None), None)
    new_id = uuid.uuid4()
    if previous is not None:
        _end(actor, previous, start, reason=f"replaced by deployment {new_id}", now=now, field_name="deployed_from")
    deployment = Deployment.objects.create(
        id=new_id,
        model_version=model_version,
        environment=environment,
        endpoint=endpoint,
        deployed_from=start,
        created_at=now,
        created_by=user_or_none(actor),
    )
    audit.record(
        actor=actor,
        action=DEPLOYMENT_CREATE,
        target=deployment,
        after=deployment.snapshot(),
        reason=f"replaces deployment {previous.pk}" if previous is not None else "",
        at=now,
    )
    history.capture(DEPLOYMENT, [deployment.pk, *([previous.pk] if previous else [])], at=now)
    return deployment


def _end(actor: Actor, deployment: Deployment, at: datetime, *, reason: str, now: datetime, field_name: str) -> None:
    """Close ``deployment`` at ``at``; ``field_name`` is the input that chose ``at`` (named in errors)."""
    if at <= deployment.deployed_from:
        raise ValidationFailed.one(
            field_name, f"Must be after the deployment's start ({_iso(deployment.deployed_from)}).", "before_start"
        )
    served = _results_served_after(deployment, at)
    if served:
        message = (
            f"{served} result record(s) were recorded as served by deployment {deployment.pk} at or after "
            f"{_iso(at)}; it cannot end before them."
        )
        raise Conflict(message, problems=[FieldProblem(field_name, message, "results_recorded")])
    before = deployment.snapshot()
    deployment.deployed_to = at
    deployment.save(update_fields=["deployed_to"])
    audit.record(
        actor=actor,
        action=DEPLOYMENT_END,
        target=deployment,
        before=before,
        after=deployment.snapshot(),
        reason=reason,
        at=now,
    )


@transaction.atomic
def deployment_end(
    *, actor: Actor, deployment: Deployment, at: datetime | None = None, now: datetime | None = None
) -> Deployment:
    """Stop ``deployment`` serving at ``at`` (default now; never in the future, after its start); 409 if ended."""
    model = deployment.model_version.model
    if not permissions.can_edit_asset(actor, model):
        raise PermissionDenied(f"You may not end deployments of model {model.name}; ask one of its owners.")
    now = now or timezone.now()
    end = _check_instant(at or now, "at", now)
    _lock_model(model.pk)
    deployment = Deployment.objects.select_related("model_version__model").get(pk=deployment.pk)
    if deployment.deployed_to is not None:
        raise Conflict(f"Deployment {deployment.pk} already ended at {_iso(deployment.deployed_to)}.")
    _end(actor, deployment, end, reason="ended", now=now, field_name="at")
    history.capture(DEPLOYMENT, [deployment.pk], at=now)
    return deployment
