"""Effective classification: max(direct level, field levels, implied levels of the asset's tags)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from uuid import UUID

from django.db import connection

from catalog.classification import levels, max_level
from catalog.history import DATASET_LEVEL
from catalog.models import Dataset, SchemaField, Tag, TagAssignment
from catalog.signals import effective_classification_changed
from ledger import history
from steward.lookups import UUIDs, uuid_array
from steward.registry import registry

__all__ = ["dataset_recompute_effective", "datasets_holding_tag"]


def datasets_holding_tag(tag_id: int) -> set[UUID]:
    """Every dataset carrying the tag directly (on itself or a field) or through a registered source."""
    ids = set(TagAssignment.objects.filter(tag_id=tag_id).values_list("dataset_id", flat=True))
    for source in registry.tag_sources:  # e.g. tags propagated along lineage
        ids.update(source.holders(tag_id))
    return ids


def dataset_recompute_effective(ids: Iterable[UUID]) -> list[UUID]:
    """Recompute ``effective_classification`` for these datasets; returns the ids whose level changed.

    Call inside the transaction that changed the inputs. Queries are per batch, not per dataset.
    Sends ``catalog.signals.effective_classification_changed`` with the changed ids (governance re-checks
    the grants on them in the same transaction).
    """
    id_list = list(ids)
    changed: dict[UUID, str] = {}
    for start in range(0, len(id_list), 20_000):
        changed.update(_recompute_batch(id_list[start : start + 20_000]))
    if changed:
        by_level: dict[str, list[UUID]] = defaultdict(list)
        for pk, code in changed.items():
            by_level[code].append(pk)
        history.write_shared(
            DATASET_LEVEL, [({"effective_classification": code}, pks) for code, pks in by_level.items()]
        )
        effective_classification_changed.send(sender=Dataset, datasets=list(changed), levels=changed)
    return list(changed)


def _recompute_batch(ids: list[UUID]) -> dict[UUID, str]:
    """The datasets among ``ids`` whose effective level changed, with their new level (already written)."""
    if connection.vendor == "postgresql" and all(source.levels_sql for source in registry.tag_sources):
        return _recompute_batch_sql(ids)
    levels: dict[UUID, set[str]] = defaultdict(set)
    for ds_id, implied in (
        TagAssignment.objects.filter(dataset_id__any_of=UUIDs(ids))
        .exclude(tag__implied_level="")
        .values_list("dataset_id", "tag__implied_level")
    ):
        levels[ds_id].add(implied)
    for ds_id, code in (
        SchemaField.objects.filter(dataset_id__any_of=UUIDs(ids))
        .exclude(classification="")
        .values_list("dataset_id", "classification")
    ):
        levels[ds_id].add(code)
    for source in registry.tag_sources:
        for ds_id, codes in source.levels(ids).items():
            levels[ds_id].update(codes)
    by_level: dict[str, list[UUID]] = defaultdict(list)
    for pk, direct, current in Dataset.objects.filter(pk__any_of=UUIDs(ids)).values_list(
        "pk", "classification", "effective_classification"
    ):
        effective = max_level([direct, *levels.get(pk, ())])
        if effective != current:
            by_level[effective].append(pk)
    for code, pks in by_level.items():
        Dataset.objects.filter(pk__any_of=UUIDs(pks)).update(effective_classification=code)
    return {pk: code for code, pks in by_level.items() for pk in pks}


def _recompute_batch_sql(ids: list[UUID]) -> dict[UUID, str]:
    """``_recompute_batch`` in one statement (PostgreSQL): every level a dataset's inputs imply, ranked by their
    position in the configured list, the highest written where it differs (rows already right stay untouched)."""
    quote = connection.ops.quote_name
    dataset, assign, tag, field = (quote(m._meta.db_table) for m in (Dataset, TagAssignment, Tag, SchemaField))
    sources = "".join(f" UNION ALL {source.levels_sql()}" for source in registry.tag_sources if source.levels_sql)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""WITH implied(ds, code) AS (
                SELECT id, classification FROM {dataset} WHERE id = ANY(%(ids)s::uuid[]) AND classification <> ''
                UNION ALL
                SELECT a.dataset_id, t.implied_level FROM {assign} a JOIN {tag} t ON t.id = a.tag_id
                WHERE a.dataset_id = ANY(%(ids)s::uuid[]) AND t.implied_level <> ''
                UNION ALL
                SELECT dataset_id, classification FROM {field} WHERE dataset_id = ANY(%(ids)s::uuid[])
                AND classification <> ''{sources}
            ), best AS (
                SELECT i.id, (%(codes)s::text[])[COALESCE(max(array_position(%(codes)s::text[], m.code::text)), 1)]
                    AS code
                FROM unnest(%(ids)s::uuid[]) i(id) LEFT JOIN implied m ON m.ds = i.id GROUP BY i.id
            )
            UPDATE {dataset} d SET effective_classification = b.code FROM best b
            WHERE d.id = b.id AND d.effective_classification IS DISTINCT FROM b.code
            RETURNING d.id, d.effective_classification""",
            {"ids": uuid_array(ids), "codes": [lvl.code for lvl in levels()]},
        )
        return dict(cursor.fetchall())
