"""Resolve what is asked about: the instant, the result record, the model version, its deployments and training run."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.utils import timezone

from catalog.history import MODEL_VERSION
from catalog.models import Deployment, ModelVersion, ResultRecord
from ledger import history
from lineage.models import Run, RunState
from steward.errors import NotFound, ValidationFailed

__all__ = ["Query", "iso", "resolve", "training"]


@dataclass(frozen=True)
class Query:
    """Either a result record, or a model version and an instant."""

    result: UUID | None = None
    model_version: UUID | None = None
    at: datetime | None = None
    lineage_depth: int = 5


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def resolve(query: Query, now: datetime) -> tuple[datetime, ResultRecord | None, ModelVersion, list[Deployment]]:
    if (query.result is None) == (query.model_version is None):
        raise ValidationFailed.one("result", "Give either result, or model_version with at.", "one_of")
    if query.result is not None:
        if query.at is not None:
            raise ValidationFailed.one("at", "A result fixes the time; leave at out.", "not_allowed")
        record = (
            ResultRecord.objects.select_related("deployment", "model_version__model").filter(pk=query.result).first()
        )
        if record is None:
            raise NotFound(f"No result record {query.result}.")
        return record.produced_at, record, record.model_version, [record.deployment] if record.deployment else []
    if query.at is None:
        raise ValidationFailed.one(
            "at", "Required with model_version (an ISO 8601 time with a UTC offset).", "required"
        )
    if timezone.is_naive(query.at):
        raise ValidationFailed.one("at", "The time has no UTC offset; add one (e.g. Z or +01:00).", "naive_datetime")
    if query.at > now:
        raise ValidationFailed.one("at", "The time is in the future; nothing is known about it yet.", "future_datetime")
    mv = (
        ModelVersion.objects.select_related("model").filter(pk=query.model_version).first()
        if query.model_version is not None  # always, past the one-of check above
        else None
    )
    if mv is None:
        raise NotFound(f"No model version {query.model_version}.")
    if mv.created_at > query.at and history.as_of(MODEL_VERSION, mv.pk, query.at) is None:
        raise ValidationFailed.one(
            "at", f"Model version {mv} was registered only at {mv.created_at.isoformat()}.", "before_existence"
        )
    serving = history.active_at(
        Deployment.objects.filter(model_version=mv), query.at, start="deployed_from", end="deployed_to"
    )
    return query.at, None, mv, list(serving.order_by("environment"))


def training(mv: ModelVersion, state: dict[str, Any] | None) -> tuple[Run | None, datetime]:
    """The training run and its time (completion, else the last state change, else the version's creation)."""
    run_id = (state or {}).get("training_run_id") or (str(mv.training_run_id) if mv.training_run_id else None)
    run = Run.objects.select_related("job").filter(pk=run_id).first() if run_id else None
    if run is None:
        return None, mv.created_at
    if run.state == RunState.COMPLETE and run.ended_at:
        return run, run.ended_at
    return run, run.state_at
