"""Tags and direct classification of a dataset or one of its fields."""

from __future__ import annotations

from django.db import transaction

from catalog import permissions
from catalog.classification import validate_code
from catalog.models import Dataset, SchemaField, Tag, TagAssignment
from catalog.services.datasets.common import datasets_changed
from catalog.signals import tags_changed
from ledger import audit
from steward.errors import NotFound, PermissionDenied, ValidationFailed
from steward.identity import Actor, user_or_none

__all__ = ["dataset_classify", "dataset_tag_add", "dataset_tag_remove"]


def _field(dataset: Dataset, field_name: str | None) -> SchemaField | None:
    if not field_name:
        return None
    found = SchemaField.objects.filter(dataset=dataset, name=field_name).first()
    if found is None:
        raise ValidationFailed.one("field", f"{dataset} has no field {field_name!r}.", "unknown_field")
    return found


@transaction.atomic
def dataset_tag_add(*, actor: Actor, dataset: Dataset, key: str, field_name: str | None = None) -> TagAssignment:
    """Tag a dataset or one of its fields (idempotent)."""
    if not permissions.can_tag_asset(actor, dataset):
        raise PermissionDenied(f"You may not tag {dataset}.")
    tag = Tag.objects.filter(key=key).first()
    if tag is None:
        raise ValidationFailed.one("key", f"Unknown tag {key!r}; create it first.", "unknown_tag")
    target_field = _field(dataset, field_name)
    assignment, created = TagAssignment.objects.get_or_create(
        dataset=dataset,
        field=target_field,
        tag=tag,
        defaults={"created_by": user_or_none(actor)},
    )
    if created:
        audit.record(
            actor=actor, action="catalog.dataset.tag_add", target=dataset, after={"tag": key, "field": field_name}
        )
        tags_changed.send(sender=Dataset, datasets=[dataset.pk], tags=[tag.pk])
        datasets_changed([dataset.pk])
    return assignment


@transaction.atomic
def dataset_tag_remove(*, actor: Actor, dataset: Dataset, key: str, field_name: str | None = None) -> None:
    """Remove a direct tag; 404 when the dataset (or field) does not carry it."""
    if not permissions.can_tag_asset(actor, dataset):
        raise PermissionDenied(f"You may not untag {dataset}.")
    target_field = _field(dataset, field_name)
    assignments = TagAssignment.objects.filter(dataset=dataset, field=target_field, tag__key=key)
    tag_ids = list(assignments.values_list("tag_id", flat=True))
    deleted, _ = assignments.delete()
    if not deleted:
        where = f"field {field_name!r} of {dataset}" if field_name else str(dataset)
        raise NotFound(f"{where} has no direct tag {key!r}.")
    audit.record(
        actor=actor, action="catalog.dataset.tag_remove", target=dataset, before={"tag": key, "field": field_name}
    )
    tags_changed.send(sender=Dataset, datasets=[dataset.pk], tags=tag_ids)
    datasets_changed([dataset.pk])


@transaction.atomic
def dataset_classify(*, actor: Actor, dataset: Dataset, level: str | None, field_name: str | None = None) -> Dataset:
    """Set (or clear, with ``None``/blank) the direct classification of a dataset or one of its fields."""
    if not permissions.can_tag_asset(actor, dataset):
        raise PermissionDenied(f"You may not classify {dataset}.")
    code = validate_code(level, "level") if level else ""
    target_field = _field(dataset, field_name)
    target = target_field or dataset
    before = target.classification
    if before != code:
        target.classification = code
        target.save(update_fields=["classification"])
        audit.record(
            actor=actor,
            action="catalog.dataset.classify",
            target=dataset,
            before={"level": before, "field": field_name},
            after={"level": code, "field": field_name},
        )
        datasets_changed([dataset.pk])
    dataset.refresh_from_db()
    return dataset
