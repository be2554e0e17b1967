"""Datasets named by producers of metadata (lineage events): created or completed, never trimmed."""

from __future__ import annotations

from collections import defaultdict
from typing import Any
from uuid import UUID, uuid4

from django.db import connection
from django.utils import timezone

from catalog.classification import lowest
from catalog.history import new_dataset_state, record_new_datasets
from catalog.models import Dataset, SchemaField
from catalog.search import index_later
from catalog.services.datasets.common import (
    CHUNK,
    DATASET_COLUMNS,
    FIELD_COLUMNS,
    datasets_changed,
)
from catalog.validation import platform_of
from ledger import audit
from ledger.audit import AuditEntry
from steward.bulk import insert_new_rows, insert_rows
from steward.identity import Actor

__all__ = ["datasets_ensure"]


def _ids_by_identity(identities: list[tuple[str, str]]) -> dict[tuple[str, str], UUID]:
    """The ids of the existing datasets among these identities (one query per namespace and chunk; ids only)."""
    return _existing(identities, set())[0]


def _existing(
    identities: list[tuple[str, str]], with_fields: set[tuple[str, str]]
) -> tuple[dict[tuple[str, str], UUID], dict[UUID, dict[str, tuple[str, str]]]]:
    """The ids of the existing datasets among these identities, and the stored fields (name -> type,
    description) of those in ``with_fields``, read together: one query per namespace and chunk."""
    found: dict[tuple[str, str], UUID] = {}
    have: dict[UUID, dict[str, tuple[str, str]]] = defaultdict(dict)
    by_ns: dict[str, list[str]] = defaultdict(list)
    for ns, name in identities:
        by_ns[ns].append(name)
    if connection.vendor != "postgresql":  # the embedded SQLite default: plain ORM queries
        for ns, names in by_ns.items():
            for start in range(0, len(names), CHUNK):
                chunk = names[start : start + CHUNK]
                rows = Dataset.objects.filter(namespace=ns, name__in=chunk).values_list("id", "name")
                found.update({(ns, name): pk for pk, name in rows})
        wanted_ids = [found[key] for key in with_fields if key in found]
        for start in range(0, len(wanted_ids), CHUNK):
            for pk, field, type_, desc in SchemaField.objects.filter(
                dataset_id__in=wanted_ids[start : start + CHUNK]
            ).values_list("dataset_id", "name", "type", "description"):
                have[pk][field] = (type_, desc)
        return found, have
    datasets, fields = Dataset._meta.db_table, SchemaField._meta.db_table
    with connection.cursor() as cursor:
        for ns, names in by_ns.items():
            for start in range(0, len(names), CHUNK):
                chunk = names[start : start + CHUNK]
                cursor.execute(
                    f"SELECT d.id, d.name, f.name, f.type, f.description FROM {datasets} d "
                    f"LEFT JOIN {fields} f ON f.dataset_id = d.id AND d.name = ANY(%s::text[]) "
                    "WHERE d.namespace = %s AND d.name = ANY(%s::text[])",
                    [[n for n in chunk if (ns, n) in with_fields], ns, chunk],
                )
                for pk, name, field, type_, desc in cursor.fetchall():
                    found[(ns, name)] = pk
                    if field is not None:
                        have[pk][field] = (type_, desc)
    return found, have


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
                if before is None:
                    merged[f["name"]] = f
                elif before is not f and any(v and before.get(k) != v for k, v in f.items()):
                    merged[f["name"]] = {**before, **{k: v for k, v in f.items() if v}}
    existing, have = _existing(list(wanted), {key for key, fields in wanted.items() if fields})
    now = timezone.now()
    lowest_code = lowest().code
    # Plain rows, no model instances: a batch creates thousands.
    new: list[tuple[UUID, str, str]] = [(uuid4(), ns, name) for (ns, name) in wanted if (ns, name) not in existing]
    # A concurrent writer may create some of the same datasets first: theirs are kept and looked up again.
    inserted = insert_new_rows(
        Dataset,
        DATASET_COLUMNS,
        [[pk, ns, name, platform_of(ns), "", "", lowest_code, {}, {}, now, now] for pk, ns, name in new],
        order_by=("namespace", "name"),
    )
    lost = [(ns, name) for pk, ns, name in new if pk not in inserted]
    new = [row for row in new if row[0] in inserted]
    ids = {**existing, **{(ns, name): pk for pk, ns, name in new}}
    if lost:
        ids |= _ids_by_identity(lost)
    new_ids = {pk for pk, _, _ in new}
    touched: set[UUID] = set(new_ids)
    with_fields = {ids[key]: fields for key, fields in wanted.items() if fields}
    # The fields written with each new dataset, as its first history state lists them.
    new_fields: dict[UUID, list[dict[str, Any]]] = defaultdict(list)
    if with_fields:
        # A dataset created here has no fields yet (and no one else sees it before commit): its fields are
        # simply appended. Those of existing datasets are compared with what is stored; only a change is written.
        fresh_rows = []
        for ds_id in [d for d in with_fields if d in new_ids]:
            for ordinal, f in enumerate(with_fields[ds_id].values()):
                row = (ds_id, f["name"], f.get("type", ""), ordinal, f.get("description", ""), "")
                fresh_rows.append(row)
                new_fields[ds_id].append(
                    {"name": row[1], "type": row[2], "ordinal": ordinal, "description": row[4], "classification": ""}
                )
        insert_rows(SchemaField, FIELD_COLUMNS, fresh_rows)
        keys = [d for d in with_fields if d not in new_ids]
        # Datasets a concurrent writer created first: their fields are read now.
        known = set(existing.values())
        late = [d for d in keys if d not in known]
        for start in range(0, len(late), CHUNK):
            for ds_id, name, type_, desc in SchemaField.objects.filter(
                dataset_id__in=late[start : start + CHUNK]
            ).values_list("dataset_id", "name", "type", "description"):
                have[ds_id][name] = (type_, desc)
        to_write = []
        for ds_id in keys:
            by_name = with_fields[ds_id]
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
        if to_write:
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
                    target_id=str(pk),
                    target_repr=f"{ns}/{name}",
                    after={"namespace": ns, "name": name, "source": source},
                )
                for pk, ns, name in new
            ],
        )
    # New datasets: their first history states are known here (no read back); changed ones are captured.
    record_new_datasets(
        {
            pk: new_dataset_state(
                namespace=ns, name=name, platform=platform_of(ns), classification="", fields=new_fields[pk]
            )
            for pk, ns, name in new
        },
        dict.fromkeys(new_ids, lowest_code),
    )
    datasets_changed(touched - new_ids, recompute=(), stamp=())
    index_later("dataset", new_ids)
    return ids
