"""Rebuild the lineage graph projection (``STEWARD_GRAPH_BACKEND=neo4j``) from the database, with a progress bar."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from lineage.graph import get_backend
from lineage.models import Job
from steward.errors import BackendUnavailable


class Command(BaseCommand):
    help = "Rebuild the lineage graph projection (the configured STEWARD_GRAPH_BACKEND) from the lineage tables."

    def handle(self, *args: Any, **options: Any) -> None:
        name = settings.STEWARD_GRAPH_BACKEND
        backend = get_backend()
        if not backend.is_projection:
            self.stdout.write(
                f"STEWARD_GRAPH_BACKEND={name!r} queries the lineage tables directly: there is no projection "
                "to rebuild."
            )
            return
        try:
            backend.ping()
            total = Job.objects.count()
            with tqdm(total=total, unit="job", disable=options["verbosity"] == 0, file=self.stderr) as bar:

                def progress(done: int, of: int) -> None:
                    bar.total = of
                    bar.update(done - bar.n)

                edges = backend.rebuild(progress=progress)
                jobs = bar.n
        except BackendUnavailable as exc:
            raise CommandError(self._unreachable(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"Projected {edges} edge(s) of {jobs} job(s) into {name}."))

    def _unreachable(self, exc: Exception) -> str:
        url = settings.STEWARD_GRAPH_OPTIONS.get("url", "")
        detail = exc.__cause__ or exc  # the driver's own words
        return (
            f"Neo4j is unreachable{f' at {url}' if url else ''}: {detail}\n"
            "Start it (for development and tests: `bash scripts/services/neo4j.sh start`, with "
            "STEWARD_NEO4J_URL=bolt://127.0.0.1:57687) or point STEWARD_NEO4J_URL, STEWARD_NEO4J_USER and "
            "STEWARD_NEO4J_PASSWORD at your server, then run `manage.py graph_rebuild` again. The lineage tables "
            "are unaffected (they are the source of truth); graph queries may miss edges until a rebuild completes."
        )
