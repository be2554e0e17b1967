"""Catalog reads, already restricted to what the viewer may see and prefetched for the serializers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from django.db import connection
from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet

from catalog import history as catalog_history
from catalog.classification import hidden_codes
from catalog.models import Dataset, Deployment, MLModel, ModelVersion, ResultRecord, SchemaField, TagAssignment
from ledger import history
from ledger.history import active_at
from steward.api.params import as_uuid, parse_uuid
from steward.errors import NotFound
from steward.identity import Viewer, viewer_for
from steward.registry import registry

__all__ = [
    "dataset_history",
    "dataset_get",
    "dataset_list",
    "dataset_page",
    "dataset_platforms",
    "DatasetPage",
    "dataset_lookup",
    "dataset_lookup_id",
    "dataset_tag_keys",
    "deployment_get",
    "deployment_list",
    "model_get",
    "model_list",
    "model_version_get",
    "result_get",
    "result_list",
    "visible_q",
]


def visible_q(model: type[Dataset] | type[MLModel], viewer: Viewer) -> Q:
    """Rows of ``model`` (Dataset or MLModel) that ``viewer`` may see: not hidden, or owned by the viewer, or held
    through a registered reader source (a grant valid now)."""
    if viewer.sees_all:
        return Q()
    hidden = hidden_codes()
    if not hidden:
        return Q()
    groups = [p.split(":", 1)[1] for p in viewer.principals if p.startswith("group:")]
    through_u = model.owner_users.through
    through_g = model.owner_groups.through
    fk = "dataset_id" if model is Dataset else "mlmodel_id"
    own_group = through_g.objects.filter(**{fk: OuterRef("pk")}, group__name__in=groups)
    # Expression first: ``Exists | Q`` is a Q to the type checker (``Q | Exists`` is not, though Django allows it).
    q = Exists(own_group) | ~Q(effective_classification__in=hidden)
    if viewer.user_id is not None:  # an anonymous viewer owns nothing
        q = Exists(through_u.objects.filter(**{fk: OuterRef("pk")}, user_id=viewer.user_id)) | q
    for source in registry.reader_sources:  # governance: holders of a grant valid now
        extra = source(model, viewer)
        if extra is not None:
            q |= extra
    return q


def _datasets(viewer: Viewer) -> QuerySet[Dataset]:
    return Dataset.objects.filter(visible_q(Dataset, viewer))


def dataset_list(*, user: Any, filters: dict[str, Any] | None = None) -> QuerySet[Dataset]:
    viewer = viewer_for(user)
    qs = _datasets(viewer)
    filters = filters or {}
    if filters.get("namespace"):
        qs = qs.filter(namespace=filters["namespace"])
    if filters.get("platform"):
        qs = qs.filter(platform=filters["platform"])
    if filters.get("classification"):
        qs = qs.filter(effective_classification=filters["classification"])
    if filters.get("tag"):
        qs = qs.filter(Exists(TagAssignment.objects.filter(dataset=OuterRef("pk"), tag__key=filters["tag"])))
    return qs.prefetch_related("owner_users", "owner_groups", "tag_assignments__tag")


@dataclass
class DatasetPage:
    """One page of datasets in (name, namespace) order, with the keys of its neighbours.

    ``count`` is exact when ``count_exact``; otherwise more than ``count`` datasets match (counting every match of
    a large catalog costs a scan of it, so the count stops at a cap)."""

    rows: list[Dataset]
    count: int
    count_exact: bool
    next_key: tuple[str, str] | None = None
    previous_key: tuple[str, str] | None = None
    first: bool = True
    filters: dict[str, Any] = field(default_factory=dict)


DATASET_COUNT_CAP = 1_000
DATASET_PAGE_SIZE = 50


def dataset_page(
    *,
    user: Any,
    filters: dict[str, Any] | None = None,
    after: tuple[str, str] | None = None,
    before: tuple[str, str] | None = None,
    size: int | None = None,
    count_cap: int | None = None,
) -> DatasetPage:
    """Keyset pagination over the visible datasets by (name, namespace) (index ``dataset_name_namespace``): a page
    costs the same at the end of 100k datasets as at the start, where an offset would read every row before it."""
    size = size or DATASET_PAGE_SIZE
    count_cap = count_cap or DATASET_COUNT_CAP
    qs = dataset_list(user=user, filters=filters)
    base = qs
    if after is not None:
        qs = qs.filter(name__gte=after[0]).filter(Q(name__gt=after[0]) | Q(namespace__gt=after[1]))
    elif before is not None:
        qs = qs.filter(name__lte=before[0]).filter(Q(name__lt=before[0]) | Q(namespace__lt=before[1]))
    if before is not None and after is None:
        rows = list(qs.order_by("-name", "-namespace")[: size + 1])
        more_before = len(rows) > size
        rows = rows[:size][::-1]
        has_next, has_previous = True, more_before
    else:
        rows = list(qs.order_by("name", "namespace")[: size + 1])
        has_next = len(rows) > size
        rows = rows[:size]
        has_previous = after is not None
    counted = base.order_by().values("pk")[: count_cap + 1].count()
    return DatasetPage(
        rows=rows,
        count=min(counted, count_cap),
        count_exact=counted <= count_cap,
        next_key=(rows[-1].name, rows[-1].namespace) if rows and has_next else None,
        previous_key=(rows[0].name, rows[0].namespace) if rows and has_previous else None,
        first=not has_previous,
        filters=filters or {},
    )


def dataset_platforms(*, user: Any) -> list[str]:
    """The platforms of the datasets the viewer may see: the distinct values come from a skip scan of the platform
    index (one probe per platform, not a read of every dataset), then one visibility check each."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "WITH RECURSIVE p(v) AS ("
                " (SELECT platform FROM catalog_dataset ORDER BY platform LIMIT 1)"
                " UNION ALL SELECT (SELECT platform FROM catalog_dataset WHERE platform > p.v"
                " ORDER BY platform LIMIT 1)"
                " FROM p WHERE p.v IS NOT NULL) SELECT v FROM p WHERE v IS NOT NULL"
            )
        else:
            cursor.execute("SELECT DISTINCT platform FROM catalog_dataset ORDER BY platform")
        every = [row[0] for row in cursor.fetchall()]
    visible = _datasets(viewer_for(user))
    return [p for p in every if visible.filter(platform=p).exists()]


def dataset_get(*, user: Any, pk: UUID | str, with_fields: bool = True) -> Dataset:
    """The dataset if it exists and the user may see it; otherwise ``NotFound`` (never a hint it exists)."""
    qs = _datasets(viewer_for(user)).prefetch_related(
        "owner_users",
        "owner_groups",
        Prefetch("tag_assignments", queryset=TagAssignment.objects.select_related("tag", "field")),
    )
    if with_fields:
        qs = qs.prefetch_related(Prefetch("fields", queryset=SchemaField.objects.order_by("ordinal", "name")))
    found = qs.filter(pk=as_uuid(pk, "dataset")).first()
    if found is None:
        raise NotFound("No such dataset.")
    return found


def dataset_lookup(*, user: Any, namespace: str, name: str) -> Dataset:
    """By identity, else by an alias (a ``symlinks`` facet's identifier); the same 404 for a dataset the
    viewer may not see as for none."""
    return dataset_get(user=user, pk=dataset_lookup_id(user=user, namespace=namespace, name=name))


def dataset_lookup_id(*, user: Any, namespace: str, name: str) -> UUID:
    """``dataset_lookup``'s id alone (same visibility and 404), for callers that need nothing else."""
    visible = _datasets(viewer_for(user))
    found = visible.filter(namespace=namespace, name=name).values_list("pk", flat=True).first()
    if found is None:
        found = visible.filter(aliases__namespace=namespace, aliases__name=name).values_list("pk", flat=True).first()
    if found is None:
        raise NotFound(f"No dataset {namespace}/{name}.")
    return found


def dataset_tag_keys(ids: list[UUID]) -> dict[UUID, set[str]]:
    """Every tag key each dataset carries: direct, on its fields, and from registered sources (propagated)."""
    keys: dict[UUID, set[str]] = {pk: set() for pk in ids}
    for ds_id, key in TagAssignment.objects.filter(dataset_id__in=ids).values_list("dataset_id", "tag__key"):
        keys[ds_id].add(key)
    for source in registry.tag_sources:
        for ds_id, found in source.keys(ids).items():
            keys.setdefault(ds_id, set()).update(found)
    return keys


def model_list(*, user: Any) -> QuerySet[MLModel]:
    return MLModel.objects.filter(visible_q(MLModel, viewer_for(user))).prefetch_related(
        "tags", "owner_users", "owner_groups"
    )


def model_get(*, user: Any, pk: UUID | str) -> MLModel:
    found = model_list(user=user).prefetch_related("versions").filter(pk=as_uuid(pk, "model")).first()
    if found is None:
        raise NotFound("No such model.")
    return found


def model_version_get(*, user: Any, pk: UUID | str) -> ModelVersion:
    visible = model_list(user=user)
    found = ModelVersion.objects.select_related("model", "trained_by", "created_by").filter(
        model__in=visible, pk=as_uuid(pk, "model version")
    )
    if not found:
        raise NotFound("No such model version.")
    return found[0]


# --- deployments and result records: visible to whoever may see the model ---------------------------------------------


def _visible_models(user: Any) -> QuerySet[MLModel, Any] | None:
    """The models ``user`` may see, as a subquery; ``None`` when that is all of them (no filter needed)."""
    viewer = viewer_for(user)
    if viewer.sees_all or not hidden_codes():
        return None
    return MLModel.objects.filter(visible_q(MLModel, viewer)).values("pk")


def _model_q(value: str, prefix: str) -> Q:
    """A model filter by id or by name."""
    try:
        return Q(**{f"{prefix}_id": UUID(value)}) | Q(**{f"{prefix}__name": value})
    except ValueError:
        return Q(**{f"{prefix}__name": value})


def deployment_list(*, user: Any, filters: dict[str, Any] | None = None) -> QuerySet[Deployment]:
    """Deployments of the models ``user`` may see. Filters: ``model`` (id or name), ``model_version`` (id),
    ``environment``, ``at`` (a datetime: those serving then)."""
    qs = Deployment.objects.select_related("model_version__model", "created_by")
    visible = _visible_models(user)
    if visible is not None:
        qs = qs.filter(model_version__model_id__in=visible)
    filters = filters or {}
    if filters.get("model"):
        qs = qs.filter(_model_q(filters["model"], "model_version__model"))
    if filters.get("model_version"):
        qs = qs.filter(model_version_id=parse_uuid(filters["model_version"], "model_version"))
    if filters.get("environment"):
        qs = qs.filter(environment=filters["environment"])
    if filters.get("at") is not None:
        qs = active_at(qs, filters["at"], start="deployed_from", end="deployed_to")
    return qs


def deployment_get(*, user: Any, pk: UUID | str) -> Deployment:
    found = deployment_list(user=user).filter(pk=as_uuid(pk, "deployment")).first()
    if found is None:
        raise NotFound("No such deployment.")
    return found


def result_list(*, user: Any, filters: dict[str, Any] | None = None) -> QuerySet[ResultRecord]:
    """Result records of the models ``user`` may see. Filters: ``model`` (id or name), ``deployment`` (id),
    ``environment`` (the deployment's), ``from`` (inclusive) and ``to`` (exclusive) datetimes on ``produced_at``."""
    qs = ResultRecord.objects.select_related("model_version", "deployment", "received_by")
    visible = _visible_models(user)
    if visible is not None:
        qs = qs.filter(model_id__in=visible)
    filters = filters or {}
    if filters.get("model"):
        qs = qs.filter(_model_q(filters["model"], "model"))
    if (deployment_id := parse_uuid(filters.get("deployment"), "deployment")) is not None:
        qs = qs.filter(deployment_id=deployment_id)
    if filters.get("environment"):
        qs = qs.filter(deployment__environment=filters["environment"])
    if filters.get("from") is not None:
        qs = qs.filter(produced_at__gte=filters["from"])
    if filters.get("to") is not None:
        qs = qs.filter(produced_at__lt=filters["to"])
    return qs


def result_get(*, user: Any, pk: UUID | str) -> ResultRecord:
    found = result_list(user=user).filter(pk=as_uuid(pk, "result record")).first()
    if found is None:
        raise NotFound("No such result record.")
    return found


def _describe_change(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[str]:
    """What differs between two recorded states of a dataset, in words a reader follows."""
    if after is None:
        return ["deleted"]
    if before is None:
        return ["first recorded"]
    changes: list[str] = []
    for key, label in (("description", "description"), ("classification", "level set directly"), ("name", "name")):
        if before.get(key) != after.get(key):
            changes.append(f"{label}: {before.get(key) or '—'} → {after.get(key) or '—'}")
    for key, label in (("owners", "owner"), ("tags", "tag")):
        old, new = set(before.get(key, [])), set(after.get(key, []))
        changes += [f"{label} {v} added" for v in sorted(new - old)]
        changes += [f"{label} {v} removed" for v in sorted(old - new)]
    old_fields = {f["name"]: f for f in before.get("fields", [])}
    new_fields = {f["name"]: f for f in after.get("fields", [])}
    changes += [f"column {n} added" for n in sorted(set(new_fields) - set(old_fields))]
    changes += [f"column {n} removed" for n in sorted(set(old_fields) - set(new_fields))]
    for name in sorted(set(old_fields) & set(new_fields)):
        old_tags, new_tags = set(old_fields[name].get("tags", [])), set(new_fields[name].get("tags", []))
        changes += [f"tag {t} added to column {name}" for t in sorted(new_tags - old_tags)]
        changes += [f"tag {t} removed from column {name}" for t in sorted(old_tags - new_tags)]
        for key in ("type", "classification", "description"):
            was, now = old_fields[name].get(key), new_fields[name].get(key)
            if was != now:
                changes.append(f"column {name} {key}: {was or '—'} → {now or '—'}")
    if before.get("properties") != after.get("properties"):
        changes.append("custom properties changed")
    return changes or ["recorded again (no visible change)"]


def dataset_history(*, user: Any, pk: UUID | str) -> list[dict[str, Any]]:
    """The dataset's recorded states (``ledger.history``), newest first: when each began and what changed,
    with the effective classification's changes interleaved."""
    dataset = dataset_get(user=user, pk=pk, with_fields=False)
    entries: list[dict[str, Any]] = []
    previous: dict[str, Any] | None = None
    for row in history.timeline(catalog_history.DATASET, dataset.pk):
        entries.append({"at": row.valid_from, "changes": _describe_change(previous, row.state)})
        previous = row.state
    level: str | None = None
    for row in history.timeline(catalog_history.DATASET_LEVEL, dataset.pk):
        new = (row.state or {}).get("effective_classification")
        if new != level:
            entries.append({"at": row.valid_from, "changes": [f"effective level: {level or '—'} → {new or '—'}"]})
        level = new
    entries.sort(key=lambda e: e["at"], reverse=True)
    return entries
