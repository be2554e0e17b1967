"""Record the current state of every live entity of some history kinds (back-filling an existing installation)."""

from __future__ import annotations

from itertools import islice
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from tqdm import tqdm

from ledger import history
from ledger.models import HistoryRecord

BATCH = 1_000


class Command(BaseCommand):
    help = (
        "Record the current state of every live entity of the given history kinds (--kind, repeated) or of all "
        "(--all), e.g. to back-fill history on an installation that had data before history was kept, or to "
        "repair what `history_verify` reports. Unchanged entities are skipped, so running it twice is harmless."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--kind", action="append", default=[], metavar="KIND", help="A kind (repeatable).")
        parser.add_argument("--all", action="store_true", help="Every registered kind.")

    def handle(self, *args: Any, **options: Any) -> None:
        known = history.kinds()
        if options["all"] == bool(options["kind"]):
            raise CommandError(f"Give --all or at least one --kind; kinds: {', '.join(known)}.")
        chosen = known if options["all"] else list(dict.fromkeys(options["kind"]))
        unknown = [k for k in chosen if k not in known]
        if unknown:
            raise CommandError(f"Unknown kind(s): {', '.join(unknown)}; kinds: {', '.join(known)}.")
        for kind in chosen:
            # Live entities, and recorded ones still open (gone since without history: they get a deletion row).
            recorded = HistoryRecord.objects.filter(kind=kind, valid_to__isnull=True).exclude(digest=history.GONE)
            keys = sorted({*map(str, history.all_keys(kind)), *recorded.values_list("key", flat=True)})
            changed = 0
            with tqdm(
                total=len(keys), unit="entity", desc=kind, disable=options["verbosity"] == 0, file=self.stderr
            ) as bar:
                it = iter(keys)
                while batch := list(islice(it, BATCH)):
                    with transaction.atomic():
                        changed += history.capture(kind, batch)
                    bar.update(len(batch))
            self.stdout.write(f"{kind}: {len(keys)} entities, {changed} recorded")
        self.stdout.write(self.style.SUCCESS("done"))
