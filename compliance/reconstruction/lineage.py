"""The upstream lineage of the training inputs as it stood at training time."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from django.conf import settings

from catalog.models import Dataset
from compliance.reconstruction.types import LineageSection
from lineage.graph import get_backend
from lineage.models import Job

__all__ = ["lineage"]


def lineage(roots: list[str], at: datetime, depth: int) -> LineageSection:
    """The upstream lineage of the training inputs as it stood at ``at`` (edges active then)."""
    backend = get_backend()
    datasets: set[UUID] = {UUID(r) for r in roots}
    edges: set[tuple[UUID, UUID, UUID]] = set()
    truncated = False
    limit = settings.STEWARD_LINEAGE_DEFAULT_NODES
    if len(roots) > 1:
        # One walk from all the inputs (one query per hop, not per hop and input). Not cut, it is the union of the
        # walks from each input; cut, those walks are what the answer shows (each with its own limit).
        walk = backend.walk_from(roots=sorted(datasets), direction="upstream", depth=depth, at=at, limit=limit)
        if not walk.truncated:
            datasets.update(walk.datasets)
            edges.update(walk.edges)
            roots = []
    for root in roots:
        walk = backend.walk(root=UUID(root), direction="upstream", depth=depth, columns=False, at=at, limit=limit)
        datasets.update(walk.datasets)
        edges.update(walk.edges)
        truncated = truncated or walk.truncated
    names = {
        pk: (ns, n) for pk, ns, n in Dataset.objects.filter(pk__in=datasets).values_list("pk", "namespace", "name")
    }
    jobs = {
        pk: (ns, n)
        for pk, ns, n in Job.objects.filter(pk__in={j for _, _, j in edges}).values_list("pk", "namespace", "name")
    }
    return {
        "depth": depth,
        "truncated": truncated,
        "datasets": sorted(
            (
                {"id": str(pk), "namespace": names.get(pk, ("", ""))[0], "name": names.get(pk, ("", ""))[1]}
                for pk in datasets
            ),
            key=lambda d: (d["namespace"], d["name"], d["id"]),
        ),
        "edges": sorted(
            (
                {
                    "source": str(s),
                    "target": str(t),
                    "job": {"id": str(j), "namespace": jobs.get(j, ("", ""))[0], "name": jobs.get(j, ("", ""))[1]},
                }
                for s, t, j in edges
            ),
            key=lambda e: (e["source"], e["target"], e["job"]["id"]),
        ),
    }
