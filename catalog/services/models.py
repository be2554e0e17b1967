"""ML model registry writes: models and their versions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from catalog import permissions
from catalog.actions import (
    MODEL_CREATE,
    MODEL_DELETE,
    MODEL_UPDATE,
    MODEL_VERSION_CREATE,
    MODEL_VERSION_STAGE,
    MODEL_VERSION_UPDATE,
)
from catalog.classification import max_level, validate_code
from catalog.history import capture_models
from catalog.models import Deployment, MLModel, ModelVersion, ResultRecord, Tag
from catalog.models.ml import ModelStage
from catalog.search import index_later
from catalog.signals import model_versions_changed
from catalog.validation import parse_owner
from ledger import audit
from steward.errors import Conflict, PermissionDenied, ValidationFailed
from steward.identity import Actor, user_or_none

__all__ = [
    "model_create",
    "model_delete",
    "model_recompute_effective",
    "model_update",
    "model_version_create",
    "model_version_update",
]


def model_recompute_effective(ids: Sequence[UUID]) -> list[UUID]:
    """Recompute models' effective classification from their direct level and tags; returns changed ids."""
    changed = []
    for model in MLModel.objects.filter(pk__in=list(ids)).prefetch_related("tags", "versions"):
        effective = max_level(
            [
                model.classification,
                *(t.implied_level for t in model.tags.all()),
                *(v.effective_classification for v in model.versions.all()),
            ]
        )
        if effective != model.effective_classification:
            model.effective_classification = effective
            model.save(update_fields=["effective_classification"])
            changed.append(model.pk)
    return changed


def _resolve_tags(keys: list[str]) -> list[Tag]:
    tags = list(Tag.objects.filter(key__in=keys))
    missing = sorted(set(keys) - {t.key for t in tags})
    if missing:
        raise ValidationFailed.one("tags", f"Unknown tag(s): {', '.join(missing)}.", "unknown_tag")
    return tags


def _set_owners(model: MLModel, owners: list[str]) -> None:
    users: list[Any] = []
    groups: list[Group] = []
    for raw in owners:
        parsed = parse_owner(raw)
        if parsed is None:
            raise ValidationFailed.one("owners", f"Invalid owner {raw!r}; use 'alice' or 'group:data-eng'.")
        kind, name = parsed
        found = (
            get_user_model().objects.filter(username=name).first()
            if kind == "user"
            else Group.objects.filter(name=name).first()
        )
        if found is None:
            raise ValidationFailed.one("owners", f"Unknown {kind} {name!r}.", "unknown_owner")
        if isinstance(found, Group):
            groups.append(found)
        else:
            users.append(found)
    model.owner_users.set(users)
    model.owner_groups.set(groups)


@transaction.atomic
def model_create(
    *,
    actor: Actor,
    name: str,
    description: str = "",
    classification: str = "",
    tags: list[str] | None = None,
    owners: list[str] | None = None,
) -> MLModel:
    """Register a model; its creator owns it unless ``owners`` says otherwise."""
    if classification:
        validate_code(classification, "classification")
    if MLModel.objects.filter(name=name).exists():
        raise Conflict(f"A model named {name!r} already exists.")
    tag_objs = _resolve_tags(tags or [])
    model = MLModel.objects.create(
        name=name,
        description=description,
        classification=classification,
        effective_classification=max_level([classification]),
    )
    model.tags.set(tag_objs)
    _set_owners(model, owners if owners is not None else [actor.username])
    model_recompute_effective([model.pk])
    model.refresh_from_db()
    audit.record(actor=actor, action=MODEL_CREATE, target=model, after=model.snapshot())
    capture_models([model.pk])
    index_later("model", [model.pk])
    return model


@transaction.atomic
def model_update(
    *,
    actor: Actor,
    model: MLModel,
    description: str | None = None,
    classification: str | None = None,
    tags: list[str] | None = None,
    owners: list[str] | None = None,
) -> MLModel:
    if not permissions.can_edit_asset(actor, model):
        raise PermissionDenied(f"You may not change model {model.name}; ask one of its owners.")
    before = model.snapshot()
    if classification:
        validate_code(classification, "classification")
    if description is not None:
        model.description = description
    if classification is not None:
        model.classification = classification
    model.updated_at = timezone.now()
    model.save()
    if tags is not None:
        model.tags.set(_resolve_tags(tags))
    if owners is not None:
        _set_owners(model, owners)
    model_recompute_effective([model.pk])
    model.refresh_from_db()
    audit.record(actor=actor, action=MODEL_UPDATE, target=model, before=before, after=model.snapshot())
    capture_models([model.pk])
    index_later("model", [model.pk])
    return model


@transaction.atomic
def model_delete(*, actor: Actor, model: MLModel) -> None:
    if not permissions.can_edit_asset(actor, model):
        raise PermissionDenied(f"You may not delete model {model.name}.")
    if (
        ResultRecord.objects.filter(model=model).exists()
        or Deployment.objects.filter(model_version__model=model).exists()
    ):
        raise Conflict(
            f"Model {model.name} has deployments or result records, which compliance keeps; archive it instead."
        )
    audit.record(actor=actor, action=MODEL_DELETE, target=model, before=model.snapshot())
    pk = model.pk
    version_ids = list(model.versions.values_list("pk", flat=True))
    model.delete()
    capture_models([pk], version_ids=version_ids)
    index_later("model", [pk])


VERSION_FIELDS = (
    "description",
    "artifact_uri",
    "artifact_digest",
    "image_digest",
    "code_commit",
    "framework",
    "parameters",
    "metrics",
    "stage",
    "training_run_id",
    "trained_by",
)


@transaction.atomic
def model_version_create(
    *, actor: Actor, model: MLModel, version: str, artifact_uri: str, **attrs: Any
) -> ModelVersion:
    """Register a version of ``model``; 409 when that version string exists."""
    if not permissions.can_edit_asset(actor, model):
        raise PermissionDenied(f"You may not add versions to model {model.name}.")
    if ModelVersion.objects.filter(model=model, version=version).exists():
        raise Conflict(f"Model {model.name} already has a version {version!r}.")
    unknown = set(attrs) - set(VERSION_FIELDS)
    if unknown:
        raise ValidationFailed.one(sorted(unknown)[0], "Unknown field.", "unknown_field")
    mv = ModelVersion.objects.create(
        model=model,
        version=version,
        artifact_uri=artifact_uri,
        created_by=user_or_none(actor),
        **attrs,
    )
    if mv.stage == ModelStage.PRODUCTION:
        _demote_other_production(actor, mv)
    MLModel.objects.filter(pk=model.pk).update(updated_at=timezone.now())
    audit.record(actor=actor, action=MODEL_VERSION_CREATE, target=mv, after=mv.snapshot())
    if mv.training_run_id:
        model_versions_changed.send(sender=ModelVersion, ids=[mv.pk])
    capture_models([model.pk])
    index_later("model", [model.pk])
    return mv


def _demote_other_production(actor: Actor, mv: ModelVersion) -> None:
    others = ModelVersion.objects.filter(model_id=mv.model_id, stage=ModelStage.PRODUCTION).exclude(pk=mv.pk)
    for other in others:
        other.stage = ModelStage.ARCHIVED
        other.save(update_fields=["stage"])
        audit.record(
            actor=actor,
            action=MODEL_VERSION_STAGE,
            target=other,
            before={"stage": ModelStage.PRODUCTION},
            after={"stage": ModelStage.ARCHIVED},
            reason=f"{mv.version} promoted to production",
        )
    capture_models([mv.model_id])


@transaction.atomic
def model_version_update(*, actor: Actor, version: ModelVersion, **changes: Any) -> ModelVersion:
    """Change a version's description, metrics or stage; promoting one to production archives the previous one."""
    if not permissions.can_edit_asset(actor, version.model):
        raise PermissionDenied(f"You may not change model {version.model.name}.")
    allowed = {"description", "metrics", "stage"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationFailed.one(sorted(unknown)[0], "Cannot be changed after registration.", "immutable")
    before = version.snapshot()
    for key, value in changes.items():
        setattr(version, key, value)
    version.save()
    if changes.get("stage") == ModelStage.PRODUCTION:
        _demote_other_production(actor, version)
    audit.record(actor=actor, action=MODEL_VERSION_UPDATE, target=version, before=before, after=version.snapshot())
    capture_models([version.model_id])
    return version
