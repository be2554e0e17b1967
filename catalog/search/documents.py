"""Build search documents (plain dataclasses) from catalog rows, in batches without N+1 queries."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from catalog.classification import hidden_codes
from catalog.models import Dataset, MLModel, SchemaField, TagAssignment
from steward.registry import registry

__all__ = ["KINDS", "SearchDocument", "build_documents", "changed_since", "iter_all_ids"]

KINDS = ("dataset", "model")


@dataclass
class SearchDocument:
    """What every search backend indexes for one asset."""

    kind: str
    id: UUID
    name: str
    qualified_name: str
    namespace: str
    platform: str
    description: str
    classification: str
    hidden: bool
    columns: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    owners: list[str] = field(default_factory=list)
    updated_at: datetime | None = None
    popularity: int = 0
    removed: bool = False  # a dataset gone from its source (``Dataset.removed_at``): not found unless asked for

    @property
    def readers(self) -> list[str]:
        """Principals that may see a hidden asset besides privileged roles (its owners)."""
        return self.owners


def _dataset_documents(ids: list[str]) -> list[SearchDocument]:
    rows = list(
        Dataset.objects.filter(pk__in=ids).only(
            "id", "namespace", "name", "platform", "description", "effective_classification", "updated_at", "removed_at"
        )
    )
    if not rows:
        return []
    pks = [r.pk for r in rows]
    columns: dict[UUID, list[str]] = defaultdict(list)
    for ds_id, fname in (
        SchemaField.objects.filter(dataset_id__in=pks).order_by("ordinal").values_list("dataset_id", "name")
    ):
        columns[ds_id].append(fname)
    tags: dict[UUID, set[str]] = defaultdict(set)
    for ds_id, key in TagAssignment.objects.filter(dataset_id__in=pks).values_list("dataset_id", "tag__key"):
        tags[ds_id].add(key)
    for source in registry.tag_sources:  # e.g. tags propagated along lineage
        for ds_id, keys in source.keys(pks).items():
            tags[ds_id].update(keys)
    owners: dict[UUID, list[str]] = defaultdict(list)
    through_u = Dataset.owner_users.through
    for ds_id, username in through_u.objects.filter(dataset_id__in=pks).values_list("dataset_id", "user__username"):
        owners[ds_id].append(f"user:{username}")
    through_g = Dataset.owner_groups.through
    for ds_id, gname in through_g.objects.filter(dataset_id__in=pks).values_list("dataset_id", "group__name"):
        owners[ds_id].append(f"group:{gname}")
    hidden = hidden_codes()
    popularity = popularity_scores("dataset", pks)
    return [
        SearchDocument(
            kind="dataset",
            id=r.pk,
            name=r.name.rsplit(".", 1)[-1].rsplit("/", 1)[-1] or r.name,
            qualified_name=r.name,
            namespace=r.namespace,
            platform=r.platform,
            description=r.description,
            classification=r.effective_classification,
            hidden=r.effective_classification in hidden,
            columns=columns[r.pk],
            tags=sorted(tags[r.pk]),
            owners=sorted(owners[r.pk]),
            updated_at=r.updated_at,
            popularity=popularity.get(r.pk, 0),
            removed=r.removed_at is not None,
        )
        for r in rows
    ]


def _model_documents(ids: list[str]) -> list[SearchDocument]:
    rows = list(MLModel.objects.filter(pk__in=ids).prefetch_related("tags", "owner_users", "owner_groups", "versions"))
    hidden = hidden_codes()
    popularity = popularity_scores("model", [m.pk for m in rows])
    docs = []
    for m in rows:
        frameworks = sorted({v.framework for v in m.versions.all() if v.framework})
        docs.append(
            SearchDocument(
                kind="model",
                id=m.pk,
                name=m.name,
                qualified_name=m.name,
                namespace="",
                platform=frameworks[0] if frameworks else "",
                description=m.description,
                classification=m.effective_classification,
                hidden=m.effective_classification in hidden,
                columns=[],
                tags=sorted({t.key for t in m.tags.all()} | {k for v in m.versions.all() for k in v.inherited_tags}),
                owners=sorted(
                    [f"user:{u.username}" for u in m.owner_users.all()]
                    + [f"group:{g.name}" for g in m.owner_groups.all()]
                ),
                updated_at=m.updated_at,
                popularity=popularity.get(m.pk, 0),
            )
        )
    return docs


def popularity_scores(kind: str, ids: list[UUID]) -> dict[UUID, int]:
    from catalog.services.popularity import popularity_scores as scores

    return scores(kind, ids)


def build_documents(kind: str, ids: Iterable[str | UUID]) -> list[SearchDocument]:
    """Documents for the given ids that still exist (missing ids are simply absent)."""
    id_list = [str(i) for i in ids]
    if kind == "dataset":
        return _dataset_documents(id_list)
    if kind == "model":
        return _model_documents(id_list)
    raise ValueError(f"unknown search kind {kind!r}")


def iter_all_ids(kind: str, chunk: int = 1000) -> Iterator[list[UUID]]:
    """All ids of a kind, in chunks (for reindexing)."""
    model = Dataset if kind == "dataset" else MLModel
    batch: list[UUID] = []
    for pk in model.objects.order_by("pk").values_list("pk", flat=True).iterator(chunk_size=chunk):
        batch.append(pk)
        if len(batch) >= chunk:
            yield batch
            batch = []
    if batch:
        yield batch


def changed_since(kind: str, since: datetime) -> list[UUID]:
    """Ids of assets of a kind updated at or after ``since``."""
    model = Dataset if kind == "dataset" else MLModel
    return list(model.objects.filter(updated_at__gte=since).values_list("pk", flat=True))
