"""What every dataset write shares: batch sizes, column lists, lookup by identity, and the epilogue."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from uuid import UUID

from django.utils import timezone

from catalog.history import capture_datasets
from catalog.models import Dataset
from catalog.search import index_later
from catalog.services.classification import dataset_recompute_effective

__all__ = ["CHUNK", "DATASET_COLUMNS", "FIELD_COLUMNS", "MAX_BULK", "datasets_by_identity", "datasets_changed"]

MAX_BULK = 10_000
CHUNK = 2_000


def datasets_by_identity(identities: list[tuple[str, str]]) -> dict[tuple[str, str], Dataset]:
    """The existing datasets among these ``(namespace, name)`` identities (one query per namespace and chunk)."""
    found: dict[tuple[str, str], Dataset] = {}
    by_ns: dict[str, list[str]] = defaultdict(list)
    for ns, name in identities:
        by_ns[ns].append(name)
    for ns, names in by_ns.items():
        for start in range(0, len(names), CHUNK):
            for ds in Dataset.objects.filter(namespace=ns, name__in=names[start : start + CHUNK]):
                found[(ds.namespace, ds.name)] = ds
    return found


DATASET_COLUMNS = [
    "id",
    "namespace",
    "name",
    "platform",
    "description",
    "classification",
    "effective_classification",
    "properties",
    "producer_facts",
    "created_at",
    "updated_at",
]
FIELD_COLUMNS = ["dataset", "name", "type", "ordinal", "description", "classification"]


def datasets_changed(
    ids: Iterable[UUID],
    *,
    recompute: Iterable[UUID] | None = None,
    stamp: Iterable[UUID] | None = None,
    now: datetime | None = None,
) -> None:
    """The epilogue of every dataset write, in its transaction and in this order: recompute the effective
    levels of ``recompute`` (default: ``ids``), stamp ``updated_at`` on ``stamp`` (default: ``ids``), record the
    history of ``ids``, and queue their re-indexing after commit (a deleted id leaves the index)."""
    id_list = list(ids)
    to_recompute = id_list if recompute is None else list(recompute)
    if to_recompute:
        dataset_recompute_effective(to_recompute)
    to_stamp = id_list if stamp is None else list(stamp)
    if to_stamp:
        Dataset.objects.filter(pk__in=to_stamp).update(updated_at=now or timezone.now())
    capture_datasets(id_list)
    index_later("dataset", id_list)
