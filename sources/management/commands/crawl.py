"""Crawl a source now, in this process, with a progress bar and a summary line (``manage.py crawl <source>``)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from sources.models import RunState, Source, SourceRun
from sources.services import run_execute
from sources.services.sources import crawler_user


class Command(BaseCommand):
    help = "Crawl a source (by name) now: read it and apply what changed to the catalog and lineage."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("source", help="The source's name (GET /api/v1/sources lists them).")

    def handle(self, *args: Any, **options: Any) -> None:
        source = Source.objects.filter(name=options["source"]).first()
        if source is None:
            names = ", ".join(Source.objects.order_by("name").values_list("name", flat=True)[:20]) or "none yet"
            raise CommandError(
                f"No source named {options['source']!r} (sources: {names}). "
                "Register one with POST /api/v1/sources or in the admin (docs/sources.md)."
            )
        run = SourceRun.objects.create(source=source, trigger="command", requested_by=crawler_user())
        with tqdm(total=None, unit="obj", disable=options["verbosity"] == 0, file=self.stderr) as bar:

            def progress(done: int, total: int | None, what: str) -> None:
                bar.set_description(what)
                if total is not None and bar.total != total:
                    bar.reset(total=total)
                bar.update(max(0, done - bar.n))

            run = run_execute(run_id=run.pk, progress=progress)
        if run.state == RunState.FAILED:
            raise CommandError(f"Crawl of {source.name} failed; nothing was changed. {run.error}")
        for warning in run.warnings[:20]:
            self.stderr.write(f"warning: {warning}")
        seconds = (run.finished_at - run.started_at).total_seconds() if run.finished_at and run.started_at else 0
        self.stdout.write(
            self.style.SUCCESS(
                f"Crawled {source.name} in {seconds:.1f} s: {run.created} created, {run.updated} updated, "
                f"{run.unchanged} unchanged, {run.removed} removed, {run.edges} lineage event(s), "
                f"{len(run.warnings)} warning(s)."
            )
        )
