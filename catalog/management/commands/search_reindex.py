"""Rebuild the search index from the database, with a progress bar."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from tqdm import tqdm

from catalog.models import Dataset, MLModel
from catalog.services.search import search_rebuild


class Command(BaseCommand):
    help = "Rebuild the search index (the configured STEWARD_SEARCH_BACKEND) from the catalog."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--keep", action="store_true", help="Do not clear the index first.")

    def handle(self, *args: Any, **options: Any) -> None:
        total = Dataset.objects.count() + MLModel.objects.count()
        with tqdm(total=total, unit="asset", disable=options["verbosity"] == 0, file=self.stderr) as bar:
            counts = search_rebuild(progress=lambda kind, n: bar.update(n), clear=not options["keep"])
        self.stdout.write(self.style.SUCCESS(f"Indexed {counts['dataset']} dataset(s) and {counts['model']} model(s)."))
