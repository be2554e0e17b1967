"""How lineage hears about catalog changes, and what it tells the catalog about propagated tags."""

from __future__ import annotations

from collections import defaultdict
from typing import Any
from uuid import UUID

from django.db import connection

from catalog.models import Tag
from lineage.models import Edge, PropagatedTag
from lineage.propagation import note_change
from steward.lookups import UUIDs


def on_tags_changed(*, datasets: list[UUID], tags: list[int], **_: Any) -> None:
    """Direct tags changed on ``datasets``: recompute downstream of them (and of their direct successors, in
    case a dataset is about to be deleted and its own row with it)."""
    roots = {UUID(str(d)) for d in datasets}
    if not roots:
        return
    ids = list(roots)
    for start in range(0, len(ids), 20000):
        roots.update(
            Edge.objects.filter(valid_to__isnull=True, source_id__any_of=UUIDs(ids[start : start + 20000])).values_list(
                "target_id", flat=True
            )
        )
    note_change(roots, tags)


def propagated_levels(ids: list[UUID]) -> dict[UUID, set[str]]:
    levels: dict[UUID, set[str]] = defaultdict(set)
    for ds, implied in (
        PropagatedTag.objects.filter(dataset_id__any_of=UUIDs(ids), valid_to__isnull=True)
        .exclude(tag__implied_level="")
        .values_list("dataset_id", "tag__implied_level")
        .distinct()
    ):
        levels[ds].add(implied)
    return levels


def propagated_levels_sql() -> str:
    """``propagated_levels`` as SQL over ``%(ids)s`` (``TagSource.levels_sql``)."""
    quote = connection.ops.quote_name
    return f"""SELECT p.dataset_id, t.implied_level FROM {quote(PropagatedTag._meta.db_table)} p
        JOIN {quote(Tag._meta.db_table)} t ON t.id = p.tag_id
        WHERE p.dataset_id = ANY(%(ids)s::uuid[]) AND p.valid_to IS NULL AND t.implied_level <> ''"""


def propagated_holders(tag_id: int) -> set[UUID]:
    return set(PropagatedTag.objects.filter(tag_id=tag_id, valid_to__isnull=True).values_list("dataset_id", flat=True))


def on_model_versions_changed(*, ids: list[UUID], **_: Any) -> None:
    from lineage.services.models import model_versions_refresh

    model_versions_refresh(ids)


def propagated_keys(ids: list[UUID]) -> dict[UUID, set[str]]:
    keys: dict[UUID, set[str]] = defaultdict(set)
    for ds, key in (
        PropagatedTag.objects.filter(dataset_id__any_of=UUIDs(ids), valid_to__isnull=True)
        .values_list("dataset_id", "tag__key")
        .distinct()
    ):
        keys[ds].add(key)
    return keys


def on_dataset_deleting(*, instance: Any, **_: Any) -> None:
    """A dataset's edges cascade away with it: re-project the jobs they belonged to after commit."""
    from django.db.models import Q

    from lineage.graph import sync_later

    jobs = set(
        Edge.objects.filter(Q(source_id=instance.pk) | Q(target_id=instance.pk)).values_list("job_id", flat=True)
    )
    sync_later(jobs)


_DECLASSIFICATIONS = "_history_declassifications"


def on_tag_deleting(*, instance: Any, **_: Any) -> None:
    """Before a tag goes: note the declassifications naming it (the cascade takes the tag off them)."""
    from lineage.history import declassifications_of_tag

    instance.__dict__[_DECLASSIFICATIONS] = declassifications_of_tag(instance.pk)


def on_tag_deleted(*, instance: Any, **_: Any) -> None:
    """After the cascade (same transaction): record those declassifications as they are now."""
    from lineage.history import capture_declassifications

    keys = instance.__dict__.pop(_DECLASSIFICATIONS, None)
    if keys:
        capture_declassifications(keys)
