"""Reads: lineage graphs, a dataset's direct and propagated tags, and why a tag is there — as of any time."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db.models import Exists, OuterRef, Q, QuerySet

from catalog import history as catalog_history
from catalog.classification import hidden_codes
from catalog.models import Dataset, Tag, TagAssignment
from catalog.selectors import dataset_get, dataset_lookup_id, visible_q
from ledger import history
from lineage.graph import get_backend
from lineage.graph.base import DIRECTIONS
from lineage.models import (
    ColumnEdge,
    ColumnTransformation,
    Declassification,
    Edge,
    Job,
    NamespaceProducer,
    PropagatedTag,
)
from steward.errors import NotFound, ValidationFailed
from steward.identity import PRIVILEGED_READERS, roles_of, viewer_for
from steward.lookups import UUIDs

__all__ = [
    "dataset_explain",
    "dataset_tags",
    "dataset_versions",
    "declassification_list",
    "job_get",
    "job_runs",
    "lineage_graph",
]


def _active_at(at: datetime | None) -> Q:
    if at is None:
        return Q(valid_to__isnull=True)
    return Q(valid_from__lte=at) & (Q(valid_to__isnull=True) | Q(valid_to__gt=at))


_HIDDEN_JOB = {"id": None, "hidden": True}


def _levels_at(datasets: dict[UUID, Dataset], at: datetime | None) -> dict[UUID, str]:
    """Each dataset's effective classification as of ``at`` (now when None), from ``ledger.history``.

    A dataset with no history row at ``at`` (history began after it, or it did not exist yet) keeps its
    current level: the best we know, rather than no level at all.
    """
    return _levels_of({pk: ds.effective_classification for pk, ds in datasets.items()}, at)


def _levels_of(current: dict[UUID, str], at: datetime | None) -> dict[UUID, str]:
    """``_levels_at`` from each dataset's current level."""
    levels = dict(current)
    if at is not None and current:
        for key, state in history.as_of_many(catalog_history.DATASET_LEVEL, current, at).items():
            level = state.get("effective_classification")
            if level:
                levels[UUID(key)] = level
    return levels


def _direct_tags_at(dataset: Dataset, at: datetime | None) -> list[dict[str, Any]]:
    """The tags assigned directly to ``dataset`` (and its fields) now, or as of ``at`` from its history.

    Without a history row at ``at`` the current assignments are the answer (see ``_levels_at``). Each
    tag's implied level is the vocabulary's as of ``at`` too.
    """
    if at is not None:
        state = history.as_of(catalog_history.DATASET, dataset.pk, at)
        if state is not None:
            pairs = [(key, "") for key in state.get("tags", [])]
            pairs += [(key, f["name"]) for f in state.get("fields", []) for key in f.get("tags", [])]
            tags = {t.key: t for t in Tag.objects.filter(key__in={k for k, _ in pairs})}
            then = history.as_of_many(catalog_history.TAG, [t.pk for t in tags.values()], at)
            implied = {
                key: (then.get(str(t.pk)) or {"implied_level": t.implied_level}).get("implied_level")
                for key, t in tags.items()
            }
            return [
                {"tag": key, "field": field or None, "implied_level": implied.get(key) or None}
                for key, field in sorted(pairs)
            ]
    return [
        {"tag": key, "field": field or None, "implied_level": level or None}
        for key, field, level in TagAssignment.objects.filter(dataset=dataset)
        .values_list("tag__key", "field__name", "tag__implied_level")
        .order_by("tag__key", "field__name")
    ]


def _job_ref(job: Job, *endpoints_visible: bool) -> dict[str, Any]:
    """A job next to a dataset the caller may not see is masked too (its name could describe that dataset)."""
    if not all(endpoints_visible):
        return dict(_HIDDEN_JOB)
    return {"id": str(job.pk), "namespace": job.namespace, "name": job.name}


def _field_ref(field: str, visible: bool) -> str | None:
    return (field or None) if visible else None


def _dataset_ref(ds: Dataset | None, visible: bool) -> dict[str, Any]:
    if ds is None or not visible:
        return {"id": None, "hidden": True}
    return {"id": str(ds.pk), "namespace": ds.namespace, "name": ds.name}


def lineage_graph(
    *,
    user: Any,
    namespace: str,
    name: str,
    direction: str = "both",
    depth: int = 3,
    columns: bool = False,
    at: datetime | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """Datasets and jobs around a dataset, nearest first, at most ``limit`` datasets (``truncated`` when cut)."""
    if direction not in DIRECTIONS:
        raise ValidationFailed.one("direction", f"Use one of {', '.join(DIRECTIONS)}.", "invalid_choice")
    max_depth = settings.STEWARD_LINEAGE_MAX_DEPTH
    if not 0 <= depth <= max_depth:
        raise ValidationFailed.one("depth", f"Must be between 0 and {max_depth}.", "out_of_range")
    max_nodes = settings.STEWARD_LINEAGE_MAX_NODES
    limit = settings.STEWARD_LINEAGE_DEFAULT_NODES if limit is None else limit
    if not 1 <= limit <= max_nodes:
        raise ValidationFailed.one("limit", f"Must be between 1 and {max_nodes}.", "out_of_range")
    root = dataset_lookup_id(user=user, namespace=namespace, name=name)
    walk = get_backend().walk(root=root, direction=direction, depth=depth, columns=columns, at=at, limit=limit)
    viewer = viewer_for(user)
    ids = list(walk.datasets)
    # Plain rows, not model instances: an answer holds hundreds of datasets and jobs.
    visible: dict[UUID, tuple[str, str, str, str]] = {
        pk: (ds_namespace, ds_name, platform, level)
        for pk, ds_namespace, ds_name, platform, level in Dataset.objects.filter(visible_q(Dataset, viewer))
        .filter(pk__any_of=UUIDs(ids))
        .values_list("pk", "namespace", "name", "platform", "effective_classification")
    }
    # Datasets the caller may not see stay in the picture as anonymous nodes (so the paths through them are
    # honest), numbered per answer; a job is named only when every dataset it touches here is visible.
    # Each id's text once (an answer names every dataset and job several times, and sorts edges by them).
    text = {pk: str(pk) for pk in walk.datasets}
    hidden_ids = {
        pk: f"hidden:{n}"
        for n, pk in enumerate(sorted((pk for pk in walk.datasets if pk not in visible), key=text.__getitem__), 1)
    }
    node_ids = {pk: f"dataset:{text[pk]}" for pk in visible}
    node_ids.update(hidden_ids)

    job_visible: dict[UUID, bool] = {}
    for s, t, j in walk.edges:
        job_visible[j] = job_visible.get(j, True) and s in visible and t in visible
    text.update((j, str(j)) for j in job_visible)
    jobs = {
        pk: (job_namespace, job_name)
        for pk, job_namespace, job_name in Job.objects.filter(pk__any_of=UUIDs(job_visible)).values_list(
            "pk", "namespace", "name"
        )
    }
    hidden_jobs = {
        j: f"job:hidden:{n}"
        for n, j in enumerate(sorted((j for j, ok in job_visible.items() if not ok), key=text.__getitem__), 1)
    }
    job_ids = {j: hidden_jobs.get(j) or f"job:{text[j]}" for j in job_visible}

    levels = _levels_of({pk: row[3] for pk, row in visible.items()}, at)
    nodes: list[dict[str, Any]] = [
        {
            "id": node_ids[pk],
            "kind": "dataset",
            "dataset_id": text[pk],
            "namespace": ds_namespace,
            "name": ds_name,
            "platform": platform,
            "classification": levels[pk],
            "depth": walk.datasets[pk],
        }
        for pk, (ds_namespace, ds_name, platform, _) in sorted(
            visible.items(), key=lambda item: (walk.datasets[item[0]], item[1][1])
        )
    ]
    nodes += [
        {"id": node, "kind": "dataset", "hidden": True, "depth": walk.datasets[pk]} for pk, node in hidden_ids.items()
    ]
    nodes += [
        {"id": job_ids[pk], "kind": "job", "job_id": text[pk], "namespace": job_namespace, "name": job_name}
        for pk, (job_namespace, job_name) in sorted(jobs.items(), key=lambda item: item[1][1])
        if pk not in hidden_jobs
    ]
    nodes += [{"id": node, "kind": "job", "hidden": True} for node in hidden_jobs.values()]
    unique: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for s, t, j in sorted(walk.edges, key=lambda e: (text[e[2]], text[e[0]], text[e[1]])):
        for source, target, kind in ((node_ids[s], job_ids[j], "input"), (job_ids[j], node_ids[t], "output")):
            if (source, target) not in seen:
                seen.add((source, target))
                unique.append({"source": source, "target": target, "kind": kind})
    result: dict[str, Any] = {
        "root": f"dataset:{root}",
        "direction": direction,
        "depth": depth,
        "at": at.isoformat() if at else None,
        "limit": limit,
        "truncated": walk.truncated,
        "nodes": nodes,
        "edges": unique,
    }
    if columns:
        column_nodes: dict[str, dict[str, Any]] = {}
        column_edges = []
        indirect = _indirect(walk.column_edges, at)
        for s, sf, t, tf, j in sorted(walk.column_edges, key=lambda c: tuple(map(str, c))):
            if s not in visible or t not in visible:
                continue
            for ds, field in ((s, sf), (t, tf)):
                if field:  # a dataset-level input's target is the dataset itself
                    column_nodes.setdefault(
                        f"column:{ds}:{field}",
                        {"id": f"column:{ds}:{field}", "kind": "column", "dataset": f"dataset:{ds}", "name": field},
                    )
            column_edges.append(
                {
                    "source": f"column:{s}:{sf}",
                    "target": f"column:{t}:{tf}" if tf else f"dataset:{t}",
                    "kind": "column",
                    "job": job_ids[j],
                    "transformation": (
                        ColumnTransformation.INDIRECT if (s, sf, t, tf, j) in indirect else ColumnTransformation.DIRECT
                    ),
                }
            )
        result["nodes"] += list(column_nodes.values())
        result["edges"] += column_edges
    return result


def _indirect(column_edges: set[tuple[UUID, str, UUID, str, UUID]], at: datetime | None) -> set[tuple]:
    """Which of a walk's column edges are INDIRECT (graph backends return the columns; the database knows the
    transformation)."""
    if not column_edges:
        return set()
    qs = ColumnEdge.objects.filter(
        _active_at(at),
        transformation=ColumnTransformation.INDIRECT,
        job_id__in={j for *_, j in column_edges},
        target_dataset_id__in={t for _, _, t, _, _ in column_edges},
    )
    rows = qs.values_list("source_dataset_id", "source_field", "target_dataset_id", "target_field", "job_id")
    return set(rows) & column_edges


def dataset_tags(*, user: Any, pk: UUID | str, at: datetime | None = None) -> dict[str, Any]:
    """Direct and propagated tags and the effective classification, now or as of ``at``; each propagated
    tag with its source."""
    dataset = dataset_get(user=user, pk=pk, with_fields=False)
    viewer = viewer_for(user)
    direct = _direct_tags_at(dataset, at)
    rows = list(
        PropagatedTag.objects.filter(_active_at(at), dataset=dataset)
        .select_related("tag", "origin_dataset", "via_dataset", "job")
        .order_by("tag__key", "field")
    )
    visible_ids = set(
        Dataset.objects.filter(visible_q(Dataset, viewer))
        .filter(pk__in={r.origin_dataset_id for r in rows} | {r.via_dataset_id for r in rows})
        .values_list("pk", flat=True)
    )
    propagated = [
        {
            "tag": r.tag.key,
            "field": r.field or None,
            "implied_level": r.tag.implied_level or None,
            "source": {
                **_dataset_ref(r.origin_dataset, r.origin_dataset_id in visible_ids),
                "field": _field_ref(r.origin_field, r.origin_dataset_id in visible_ids),
            },
            "via": {
                **_dataset_ref(r.via_dataset, r.via_dataset_id in visible_ids),
                "field": _field_ref(r.via_field, r.via_dataset_id in visible_ids),
                "job": _job_ref(r.job, r.via_dataset_id in visible_ids),
            },
            "since": r.valid_from.isoformat(),
        }
        for r in rows
    ]
    return {
        "dataset": str(dataset.pk),
        "at": at.isoformat() if at else None,
        "effective_classification": _levels_at({dataset.pk: dataset}, at)[dataset.pk],
        "direct": direct,
        "propagated": propagated,
    }


def dataset_explain(
    *, user: Any, pk: UUID | str, tag: str, field: str | None = None, at: datetime | None = None
) -> dict[str, Any]:
    """One path from a direct assignment of ``tag`` to this dataset (or its ``field``)."""
    dataset = dataset_get(user=user, pk=pk, with_fields=False)
    if not tag:
        raise ValidationFailed.one("tag", "Name the tag to explain.", "required")
    field = field or ""
    direct_q = TagAssignment.objects.filter(dataset=dataset, tag__key=tag)
    direct_q = direct_q.filter(field__name=field) if field else direct_q.filter(field__isnull=True)
    directly = (
        direct_q.exists()
        if at is None
        else any(d["tag"] == tag and (d["field"] or "") == field for d in _direct_tags_at(dataset, at))
    )
    if directly:
        return {"tag": tag, "dataset": str(dataset.pk), "field": field or None, "direct": True, "path": []}
    active = _active_at(at)
    row = PropagatedTag.objects.filter(active, dataset=dataset, field=field, tag__key=tag).first()
    if row is None and not field:
        # The dataset carries the tag through one of its columns.
        row = PropagatedTag.objects.filter(active, dataset=dataset, tag__key=tag).order_by("field").first()
    if row is None:
        what = f"field {field!r} of {dataset}" if field else str(dataset)
        raise NotFound(f"{what} does not carry {tag!r} through lineage" + (f" at {at.isoformat()}." if at else "."))
    hops: list[PropagatedTag] = []
    seen: set[tuple[UUID, str]] = set()
    while row is not None and (row.dataset_id, row.field) not in seen and len(hops) < 10_000:
        seen.add((row.dataset_id, row.field))
        hops.append(row)
        if (row.via_dataset_id, row.via_field) == (row.origin_dataset_id, row.origin_field):
            break
        row = PropagatedTag.objects.filter(
            active, dataset_id=row.via_dataset_id, field=row.via_field, tag_id=row.tag_id
        ).first()
    hops.reverse()
    ids = {h.via_dataset_id for h in hops} | {h.dataset_id for h in hops}
    viewer = viewer_for(user)
    shown = {d.pk: d for d in Dataset.objects.filter(visible_q(Dataset, viewer)).filter(pk__in=ids)}
    jobs = {j.pk: j for j in Job.objects.filter(pk__in={h.job_id for h in hops})}
    path = [
        {
            "from": {
                **_dataset_ref(shown.get(h.via_dataset_id), h.via_dataset_id in shown),
                "field": _field_ref(h.via_field, h.via_dataset_id in shown),
            },
            "job": _job_ref(jobs[h.job_id], h.via_dataset_id in shown, h.dataset_id in shown),
            "to": {
                **_dataset_ref(shown.get(h.dataset_id), h.dataset_id in shown),
                "field": _field_ref(h.field, h.dataset_id in shown),
            },
        }
        for h in hops
    ]
    origin = hops[0] if hops else None
    return {
        "tag": tag,
        "dataset": str(dataset.pk),
        "field": field or None,
        "direct": False,
        "at": at.isoformat() if at else None,
        "source": {
            **_dataset_ref(shown.get(origin.via_dataset_id), origin.via_dataset_id in shown),
            "field": _field_ref(origin.via_field, origin.via_dataset_id in shown),
        }
        if origin
        else None,
        "path": path,
    }


def _touches_hidden(user: Any, job_ref: str) -> Exists | None:
    """Whether the job (``OuterRef(job_ref)``) has, or ever had, an edge touching a dataset ``user`` may not
    see; ``None`` when the user sees every dataset. Such a job is hidden, as the graph masks it: its name
    could describe that dataset."""
    viewer = viewer_for(user)
    hidden = hidden_codes()
    if viewer.sees_all or not hidden:
        return None
    # Driven from the job's edges (each endpoint looked up by id), not from the hidden datasets: the level is not
    # indexed (catalog migration 0011), and a job has few edges.
    unseen = Dataset.objects.filter(effective_classification__in=hidden).exclude(visible_q(Dataset, viewer))
    return Exists(
        Edge.objects.filter(job_id=OuterRef(job_ref)).filter(
            Exists(unseen.filter(pk=OuterRef("source_id"))) | Exists(unseen.filter(pk=OuterRef("target_id")))
        )
    )


def job_get(*, user: Any, pk: UUID | str | None = None, namespace: str = "", name: str = "") -> Job:
    """The job (by id, or by ``namespace`` and ``name``), unless it touches a dataset the user may not see (then
    ``NotFound``, as for the dataset and as for a job that does not exist)."""
    qs = Job.objects.filter(pk=pk) if pk is not None else Job.objects.filter(namespace=namespace, name=name)
    hidden = _touches_hidden(user, "pk")
    if hidden is not None:
        qs = qs.exclude(hidden)
    job = qs.first()
    if job is None:
        raise NotFound("No such job.")
    return job


def job_runs(job: Job, limit: int = 50) -> list[dict[str, Any]]:
    """The job's latest runs (by their latest event time), newest first."""
    return [
        {
            "id": str(run.pk),
            "state": run.state,
            "state_at": run.state_at,
            "started_at": run.started_at,
            "ended_at": run.ended_at,
            "facets": run.facets,
        }
        for run in job.runs.order_by("-state_at", "-pk")[:limit]
    ]


def declassification_list(*, user: Any, state: str | None = None) -> QuerySet[Declassification]:
    """Declassifications the user may see (newest first): those on jobs whose datasets they may all see, and
    their own requests."""
    qs = Declassification.objects.select_related("job", "requested_by", "decided_by").prefetch_related("tags")
    hidden = _touches_hidden(user, "job_id")
    if hidden is not None:
        qs = qs.filter(Q(requested_by_id=user.pk) | ~hidden)
    if state:
        qs = qs.filter(state=state)
    return qs


def dataset_versions(*, user: Any, pk: UUID | str, limit: int = 100) -> dict[str, Any]:
    """The dataset's versions (from OpenLineage version facets, or the run id), newest first."""
    dataset = dataset_get(user=user, pk=pk, with_fields=False)
    return {
        "dataset": str(dataset.pk),
        "results": [
            {
                "version": v.version,
                "run_id": str(v.run_id) if v.run_id else None,
                "created_at": v.created_at,
                "fields": [f.get("name") for f in v.schema if isinstance(f, dict)],
            }
            for v in dataset.versions.order_by("-created_at", "-pk")[:limit]
        ],
    }


def namespace_producers(*, user: Any, namespace: str | None = None) -> Any:
    """Namespace assignments: every one for admins, stewards and compliance officers; a producer's own otherwise."""
    qs = NamespaceProducer.objects.select_related("producer", "assigned_by")
    if not (roles_of(user) & PRIVILEGED_READERS):
        qs = qs.filter(producer_id=user.pk)
    if namespace:
        qs = qs.filter(namespace=namespace)
    return qs
