"""Reconcile the managed data planes with the grants in force now, with a progress bar."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from tqdm import tqdm

from connectors.services import dataplane_reconcile


class Command(BaseCommand):
    help = (
        "Drop data-plane roles of grants that ended or are no longer in force and fix VALID UNTIL drift "
        "(STEWARD_DATAPLANE_GRANTS_SELECTOR gives the grants in force)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        with tqdm(unit="role", disable=options["verbosity"] == 0, file=self.stderr) as bar:
            report = dataplane_reconcile(progress=lambda role, action: bar.update(1))
        for role, reason in sorted(report.dropped.items()):
            self.stdout.write(f"dropped {role} ({reason})")
        for role, until in sorted(report.updated.items()):
            self.stdout.write(f"updated {role}: valid until {until}")
        for grant_id in report.missing:
            self.stdout.write(f"missing: grant {grant_id} has no role yet (apply hands out credentials)")
        for what, error in sorted(report.failed.items()):
            self.stderr.write(self.style.ERROR(f"failed {what}: {error}"))
        counts = report.counts()
        summary = ", ".join(f"{n} {k}" for k, n in counts.items())
        self.stdout.write(self.style.SUCCESS(summary) if not report.failed else self.style.WARNING(summary))
