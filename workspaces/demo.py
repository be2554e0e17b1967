"""Demo workspaces (idempotent): sam's, over the datasets the governance demo granted him; none is started.

Created through the service (so they get their own grants, derived from sam's) with ``start=False``: loading
the demo starts no process and queues no work; ``POST /api/v1/workspaces/{id}/start`` runs one.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from catalog.models import Dataset
from governance.selectors import grants_valid_at
from workspaces.models import Project, Workspace
from workspaces.services import workspace_create

__all__ = ["load_demo_workspaces"]

PG = "postgres://warehouse.internal:5432"

# (name, template, datasets, project)
WORKSPACES = [
    ("ledger review", "jupyter-cpu", ["finance.public.ledger", "web.public.page_views"], None),
    ("page views dashboard", "vscode", ["web.public.page_views"], None),
    ("churn model", "jupyter-cpu", [], "churn"),
]


def load_demo_workspaces(*, progress: Callable[[str], None] = lambda msg: None) -> dict[str, int]:
    """Create sam's demo workspaces once (after the governance demo, which grants him the datasets)."""
    sam = User.objects.filter(username="sam").first()
    if sam is None or Workspace.objects.filter(owner=sam).exists():
        return {"workspaces": 0}
    made = 0
    with transaction.atomic():
        project, _ = Project.objects.get_or_create(name="churn", defaults={"title": "Churn prediction"})
        project.members.add(sam, *User.objects.filter(username="dana"))
        held = set(grants_valid_at(at=timezone.now(), user_id=sam.pk).values_list("dataset_id", flat=True))
        for name, template, dataset_names, project_name in WORKSPACES:
            datasets = list(Dataset.objects.filter(namespace=PG, name__in=dataset_names, pk__in=held))
            if len(datasets) != len(dataset_names):
                continue  # the governance demo did not grant them (an older demo database)
            workspace_create(
                actor=sam,
                template=template,
                datasets=[d.pk for d in datasets],
                name=name,
                project=project_name,
                resources={"cpu": "1", "memory": "2Gi"},
                start=False,
            )
            made += 1
    progress(f"{made} workspaces of sam (stopped; start one to run it)")
    return {"workspaces": made}
