"""Import Apache Atlas entities, processes and classifications (a JSON document) into Steward, idempotently."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from interop.atlas import import_document
from steward.errors import DomainError, ValidationFailed


class Command(BaseCommand):
    help = (
        "Import an Atlas document (typeDefs + entities) into the catalog and lineage; running it again changes nothing."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("file", help="The Atlas JSON document (atlas_export writes one).")
        parser.add_argument("--actor", required=True, help="Username recorded in the audit log (a data steward).")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            with open(options["file"]) as fh:
                doc = json.load(fh)
        except (OSError, ValueError) as exc:
            raise CommandError(f"{options['file']}: {exc}") from exc
        actor = get_user_model().objects.filter(username=options["actor"]).first()
        if actor is None:
            raise CommandError(f"--actor: no user {options['actor']!r}.")
        total = len(doc.get("entities") or []) if isinstance(doc, dict) else 0
        try:
            with tqdm(total=total, unit="entity", disable=options["verbosity"] == 0, file=self.stderr) as bar:
                result = import_document(doc, actor=actor, progress=bar.update)
        except ValidationFailed as exc:
            lines = [f"{p.field or '(document)'}: {p.message}" for p in exc.problems]
            raise CommandError("invalid Atlas document:\n" + "\n".join(lines)) from exc
        except DomainError as exc:  # e.g. the actor may not create the tags the document needs
            raise CommandError(exc.message) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Datasets: {result.datasets_created} created, {result.datasets_updated} updated, "
                f"{result.datasets_unchanged} unchanged; tags created: {len(result.tags_created)}; "
                f"processes: {result.processes} ({result.lineage_events_new} new)."
            )
        )
