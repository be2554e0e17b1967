"""Export the catalog and lineage as Apache Atlas type definitions and entities (a JSON file), and push them to
a live Atlas when one is configured."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from catalog.models import Dataset
from interop.atlas import build_export, push_document, validate_document


class Command(BaseCommand):
    help = "Write Steward's datasets, columns, jobs, column lineage and classifications as an Atlas document."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--output", "-o", help="JSON file to write (default: standard output).")
        parser.add_argument("--since", help="Only datasets and jobs changed at or after this ISO 8601 time.")
        parser.add_argument("--push", action="store_true", help="Also send it to STEWARD_ATLAS_URL (or --url).")
        parser.add_argument("--url", help="Atlas base URL, e.g. http://127.0.0.1:21000 (overrides the setting).")

    def handle(self, *args: Any, **options: Any) -> None:
        since = None
        if options["since"]:
            try:
                since = datetime.fromisoformat(options["since"])
            except ValueError as exc:
                raise CommandError(f"--since: {options['since']!r} is not an ISO 8601 time.") from exc
            if since.tzinfo is None:
                raise CommandError("--since: give a time zone offset, e.g. 2026-01-01T00:00:00+00:00.")
        total = Dataset.objects.count()
        with tqdm(total=total, unit="entity", disable=options["verbosity"] == 0, file=self.stderr) as bar:
            doc = build_export(since=since, progress=bar.update)
        validate_document(doc)
        text = json.dumps(doc, indent=1, sort_keys=True)
        if options["output"]:
            with open(options["output"], "w") as fh:
                fh.write(text)
        elif not options["push"]:
            self.stdout.write(text)
        n = len(doc["entities"])
        if options["push"]:
            push_document(doc, url=options["url"])
            self.stderr.write(self.style.SUCCESS(f"Pushed {n} entities to Atlas."))
        if options["output"]:
            self.stderr.write(self.style.SUCCESS(f"Wrote {n} entities to {options['output']}."))
