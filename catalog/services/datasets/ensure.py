"""Datasets named by producers of metadata (lineage events): created or completed, never trimmed."""

from __future__ import annotations

from collections import defaultdict
from uuid import UUID

from django.utils import timezone

from catalog.classification import lowest
from catalog.models import Dataset, SchemaField
from catalog.services.datasets.common import (
    CHUNK,
    DATASET_COLUMNS,
    datasets_by_identity,
    datasets_changed,
)
from catalog.validation import platform_of
from ledger import audit
from ledger.audit import AuditEntry
from steward.bulk import insert_new_rows
from steward.identity import Actor

__all__ = ["datasets_ensure"]


def datasets_ensure(
    *, actor: Actor, items: list[tuple[str, str, list[dict[str, str]] | None]], source: str = "lineage"
) -> dict[tuple[str, str], UUID]:
    """Make sure these ``(namespace, name, fields)`` datasets exist; returns their ids by identity.

    For producers of metadata (lineage events) rather than people: missing datasets are created (owned by
    no one, at the lowest level), listed fields are added or their types updated, and fields are never
    removed here (an event's schema may be partial). The caller checks permission and holds the transaction.
    """
    wanted: dict[tuple[str, str], dict[str, dict[str, str]] | None] = {}
    for namespace, name, fields in items:
        merged = wanted.setdefault((namespace, name), None if fields is None else {})
        if fields is not None:
            if merged is None:
                merged = wanted[(namespace, name)] = {}
            for f in fields:
                # A later mention updates what it states; one without a type or description (a column named
                # only by column lineage) does not erase what a schema facet said.
                before = merged.get(f["name"])
                merged[f["name"]] = f if before is None else {**before, **{k: v for k, v in f.items() if v}}
    existing = {key: ds.pk for key, ds in datasets_by_identity(list(wanted)).items()}
    now = timezone.now()
    lowest_code = lowest().code
    new = [
        Dataset(
            namespace=ns,
            name=name,
            platform=platform_of(ns),
            effective_classification=lowest_code,
            created_at=now,
            updated_at=now,
        )
        for (ns, name) in wanted
        if (ns, name) not in existing
    ]
    # A concurrent writer may create some of the same datasets first: theirs are kept and looked up again.
    inserted = insert_new_rows(
        Dataset,
        DATASET_COLUMNS,
        [[getattr(ds, c) for c in DATASET_COLUMNS] for ds in new],
        order_by=("namespace", "name"),
    )
    lost = [(ds.namespace, ds.name) for ds in new if ds.pk not in inserted]
    new = [ds for ds in new if ds.pk in inserted]
    ids = {**existing, **{(ds.namespace, ds.name): ds.pk for ds in new}}
    ids |= {key: ds.pk for key, ds in datasets_by_identity(lost).items()}
    touched: set[UUID] = {ds.pk for ds in new}
    with_fields = {ids[key]: fields for key, fields in wanted.items() if fields}
    if with_fields:
        have: dict[UUID, dict[str, tuple[str, str]]] = defaultdict(dict)
        keys = list(with_fields)
        for start in range(0, len(keys), CHUNK):
            for ds_id, name, type_, desc in SchemaField.objects.filter(
                dataset_id__in=keys[start : start + CHUNK]
            ).values_list("dataset_id", "name", "type", "description"):
                have[ds_id][name] = (type_, desc)
        to_write = []
        for ds_id, by_name in with_fields.items():
            current = have.get(ds_id, {})
            next_ordinal = len(current)
            for f in by_name.values():
                old = current.get(f["name"])
                if old is None:
                    to_write.append(
                        SchemaField(
                            dataset_id=ds_id,
                            name=f["name"],
                            type=f.get("type", ""),
                            description=f.get("description", ""),
                            ordinal=next_ordinal,
                        )
                    )
                    next_ordinal += 1
                elif (f.get("type") and f["type"] != old[0]) or (f.get("description") and f["description"] != old[1]):
                    to_write.append(
                        SchemaField(
                            dataset_id=ds_id,
                            name=f["name"],
                            type=f.get("type") or old[0],
                            description=f.get("description") or old[1],
                        )
                    )
                else:
                    continue
                touched.add(ds_id)
        to_write.sort(key=lambda f: (str(f.dataset_id), f.name))  # one lock order for concurrent writers
        SchemaField.objects.bulk_create(
            to_write,
            update_conflicts=True,
            unique_fields=["dataset", "name"],
            update_fields=["type", "description"],
            batch_size=2000,
        )
    if new:
        audit.record_many(
            actor=actor,
            entries=[
                AuditEntry(
                    action="catalog.dataset.create",
                    target_type="catalog.dataset",
                    target_id=str(ds.pk),
                    target_repr=str(ds),
                    after={"namespace": ds.namespace, "name": ds.name, "source": source},
                )
                for ds in new
            ],
        )
    datasets_changed(touched, recompute=(), stamp=())
    return ids
