"""Usage signals for search ranking (Amundsen's popularity): assets people open, ask for and build on rank higher.

Recording is one upsert per event on a narrow counter table (no audit, no history, no reindex); a periodic
task (``catalog.popularity_flush``) pushes the assets whose counters moved to the search index in batches.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from django.db import connection, transaction

from catalog.models import AssetPopularity
from catalog.search import index_later

__all__ = [
    "LINEAGE_WEIGHT",
    "REQUEST_WEIGHT",
    "SIGNALS",
    "popularity_flush",
    "popularity_record",
    "popularity_scores",
]

SIGNALS = {"open": "opens", "request": "requests", "lineage": "lineage_uses"}
# An access request or a job reading the dataset says more than a page view.
REQUEST_WEIGHT = 5
LINEAGE_WEIGHT = 3


def popularity_record(*, kind: str, ids: Iterable[UUID | str], signal: str) -> None:
    """Count one ``signal`` (``open``, ``request``, ``lineage``) per occurrence of an id; one statement."""
    column = SIGNALS[signal]
    counts = Counter(str(i) for i in ids)  # several events for one asset in a batch: one row, summed
    if not counts:
        return
    table = AssetPopularity._meta.db_table
    columns = list(SIGNALS.values())
    rows = ", ".join([f"(%s, %s, {', '.join(['%s'] * len(columns))}, true)"] * len(counts))
    field = AssetPopularity._meta.get_field("object_id")
    params: list[Any] = []
    for object_id, n in sorted(counts.items()):  # a fixed order: concurrent upserts cannot deadlock
        params += [kind, field.get_db_prep_value(UUID(object_id), connection)]
        params += [n if c == column else 0 for c in columns]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (kind, object_id, {', '.join(columns)}, changed) VALUES {rows} "
            f"ON CONFLICT (kind, object_id) DO UPDATE SET {column} = {table}.{column} + EXCLUDED.{column}, "
            "changed = true",
            params,
        )


def popularity_scores(kind: str, ids: Iterable[UUID]) -> dict[UUID, int]:
    """The ranking score of each asset that has one: opens + 5 × requests + 3 × lineage uses."""
    return {
        pk: opens + REQUEST_WEIGHT * requests + LINEAGE_WEIGHT * lineage
        for pk, opens, requests, lineage in AssetPopularity.objects.filter(
            kind=kind, object_id__in=list(ids)
        ).values_list("object_id", "opens", "requests", "lineage_uses")
    }


def popularity_flush(*, limit: int = 5000) -> int:
    """Queue re-indexing of assets whose counters changed since the last flush; returns how many."""
    queued = 0
    with transaction.atomic():
        rows = list(
            AssetPopularity.objects.select_for_update(skip_locked=True)
            .filter(changed=True)
            .values_list("pk", "kind", "object_id")[:limit]
        )
        if not rows:
            return 0
        AssetPopularity.objects.filter(pk__in=[r[0] for r in rows]).update(changed=False)
        by_kind: dict[str, list[UUID]] = {}
        for _, kind, object_id in rows:
            by_kind.setdefault(kind, []).append(object_id)
        for kind, ids in by_kind.items():
            index_later(kind, ids)
            queued += len(ids)
    return queued
