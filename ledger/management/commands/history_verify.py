"""Check that history is complete: every kind's open rows match the live tables (``history.drift``)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from ledger import history

SHOWN = 5


class Command(BaseCommand):
    help = (
        "Compare each history kind's current rows with the live tables; exits 1 when any entity drifted (a write "
        "that skipped history, or data from before history was kept). Repair with `history_capture`."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--kind", action="append", default=[], metavar="KIND", help="Only this kind (repeatable).")

    def handle(self, *args: Any, **options: Any) -> None:
        known = history.kinds()
        chosen = list(dict.fromkeys(options["kind"])) or known
        unknown = [k for k in chosen if k not in known]
        if unknown:
            self.stderr.write(self.style.ERROR(f"Unknown kind(s): {', '.join(unknown)}; kinds: {', '.join(known)}."))
            raise SystemExit(2)
        drifted: dict[str, list[str]] = {}
        for kind in chosen:
            keys = history.drift(kind)
            if keys:
                drifted[kind] = keys
                more = f" (and {len(keys) - SHOWN} more)" if len(keys) > SHOWN else ""
                self.stdout.write(
                    self.style.ERROR(f"{kind}: {len(keys)} drifted, e.g. {', '.join(keys[:SHOWN])}{more}")
                )
            else:
                self.stdout.write(f"{kind}: ok")
        if drifted:
            total = sum(len(k) for k in drifted.values())
            flags = " ".join(f"--kind {k}" for k in drifted)
            self.stderr.write(
                self.style.ERROR(
                    f"History drifted for {total} entit{'y' if total == 1 else 'ies'} in {len(drifted)} kind(s): "
                    "their current state is not what history last recorded (a write that skipped history, or data "
                    f"from before history was kept). Record their current state: manage.py history_capture {flags}"
                )
            )
            raise SystemExit(1)
        self.stdout.write(self.style.SUCCESS(f"History matches the live tables for {len(chosen)} kind(s)."))
