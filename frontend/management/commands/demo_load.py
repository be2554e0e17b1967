"""Load the generated demo data set (idempotent): every app's demo, bottom layer first.

Lives in the top layer (frontend) because it drives every app; each app keeps its own ``demo.py``.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from catalog.demo import load_demo_catalog
from catalog.models import Dataset, MLModel
from catalog.services.search import search_rebuild
from governance.demo import load_demo_compliance, load_demo_governance
from ledger import audit
from lineage.demo import load_demo_lineage
from workspaces.demo import load_demo_workspaces


class Command(BaseCommand):
    help = (
        "Create demo users in every role, tags, ~200 datasets on 3 platforms, lineage, ML models, access "
        "requests and (stopped) workspaces. Only into an empty catalog: a database holding any dataset or model "
        "(the demo, loaded before and changed since, or real data) is left exactly as it is."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        if Dataset.objects.exists() or MLModel.objects.exists():
            self.stdout.write("  demo: the catalog is not empty; nothing loaded, nothing changed.")
            return
        # The loader drives the services as the demo's users; the audit records the system, with this reason.
        with audit.as_system("demo data set loaded into an empty database"):
            self._load()

    def _load(self) -> None:
        counts = load_demo_catalog(progress=lambda msg: self.stdout.write(f"  demo: {msg}"))
        lineage = load_demo_lineage(progress=lambda msg: self.stdout.write(f"  demo: {msg}"))
        governance = load_demo_governance(progress=lambda msg: self.stdout.write(f"  demo: {msg}"))
        load_demo_compliance(progress=lambda msg: self.stdout.write(f"  demo: {msg}"))
        workspaces = load_demo_workspaces(progress=lambda msg: self.stdout.write(f"  demo: {msg}"))
        search_rebuild()
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data ready: {counts['datasets']} datasets, {counts['models']} models, {counts['users']} users, "
                f"{lineage['jobs']} lineage jobs, {governance['requests']} access requests, "
                f"{workspaces['workspaces']} workspaces."
            )
        )
