"""The tag vocabulary: create, change, delete."""

from __future__ import annotations

from django.db import transaction

from catalog import permissions
from catalog.actions import TAG_CREATE, TAG_DELETE, TAG_UPDATE
from catalog.classification import validate_code
from catalog.history import TAG, capture_datasets, capture_models
from catalog.models import MLModel, Tag, TagAssignment
from catalog.search import index_later
from catalog.services.classification import dataset_recompute_effective, datasets_holding_tag
from catalog.validation import TAG_KEY_RE
from ledger import audit, history
from steward.errors import Conflict, PermissionDenied, ValidationFailed
from steward.identity import Actor

__all__ = ["tag_create", "tag_delete", "tag_update"]


def _check_actor(actor: Actor) -> None:
    if not permissions.can_curate_tags(actor):
        raise PermissionDenied("Only data stewards, privacy officers and admins manage the tag vocabulary.")


@transaction.atomic
def tag_create(
    *, actor: Actor, key: str, description: str = "", implied_level: str = "", propagates: bool = True
) -> Tag:
    _check_actor(actor)
    if not TAG_KEY_RE.match(key or ""):
        raise ValidationFailed.one(
            "key",
            "Use lower-case letters, digits, '.', '_' or '-', starting with a letter or digit (at most 100).",
            "invalid_tag_key",
        )
    if implied_level:
        validate_code(implied_level, "implied_level")
    if Tag.objects.filter(key=key).exists():
        raise Conflict(f"Tag {key!r} already exists.")
    tag = Tag.objects.create(key=key, description=description, implied_level=implied_level, propagates=propagates)
    audit.record(
        actor=actor,
        action=TAG_CREATE,
        target=tag,
        after={"key": key, "implied_level": implied_level, "propagates": propagates},
    )
    history.capture(TAG, [tag.pk])
    return tag


@transaction.atomic
def tag_update(
    *,
    actor: Actor,
    tag: Tag,
    description: str | None = None,
    implied_level: str | None = None,
    propagates: bool | None = None,
) -> Tag:
    """Change a tag; a new implied level reclassifies everything that carries the tag."""
    _check_actor(actor)
    before = {"description": tag.description, "implied_level": tag.implied_level, "propagates": tag.propagates}
    if implied_level:
        validate_code(implied_level, "implied_level")
    if description is not None:
        tag.description = description
    if implied_level is not None:
        tag.implied_level = implied_level
    if propagates is not None:
        tag.propagates = propagates
    after = {"description": tag.description, "implied_level": tag.implied_level, "propagates": tag.propagates}
    if after == before:
        return tag
    tag.save()
    audit.record(actor=actor, action=TAG_UPDATE, target=tag, before=before, after=after)
    history.capture(TAG, [tag.pk])
    if before["propagates"] != tag.propagates:
        from catalog.signals import tags_changed

        ids = list(TagAssignment.objects.filter(tag=tag).values_list("dataset_id", flat=True).distinct())
        tags_changed.send(sender=Tag, datasets=ids, tags=[tag.pk])
    if before["implied_level"] != tag.implied_level:
        ids = list(datasets_holding_tag(tag.pk))
        changed = dataset_recompute_effective(ids)
        capture_datasets(changed)
        index_later("dataset", changed)
        from catalog.services.models import model_recompute_effective

        model_ids = list(MLModel.objects.filter(tags=tag).values_list("pk", flat=True))
        changed_models = model_recompute_effective(model_ids)
        capture_models(changed_models)
        index_later("model", changed_models)
    return tag


@transaction.atomic
def tag_delete(*, actor: Actor, tag: Tag) -> None:
    _check_actor(actor)
    in_use = TagAssignment.objects.filter(tag=tag).count() + tag.models.count()
    if in_use:
        raise Conflict(f"Tag {tag.key!r} is still assigned {in_use} time(s); remove those assignments first.")
    audit.record(actor=actor, action=TAG_DELETE, target=tag, before={"key": tag.key})
    pk = tag.pk
    tag.delete()
    history.capture(TAG, [pk])
