"""Print every environment variable Steward reads, with its default (the README's configuration table)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from steward.env import BASE_DIR, VARIABLES


class Command(BaseCommand):
    help = "List the environment variables Steward reads, their defaults and current values (secrets masked)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--markdown", action="store_true", help="Print the README table.")

    def handle(self, *args: Any, **options: Any) -> None:
        import os

        if options["markdown"]:
            self.stdout.write("| Variable | Default | Meaning |\n|---|---|---|")
            for var in sorted(VARIABLES.values(), key=lambda v: v.name):
                default = var.default.replace(str(_base_dir()), ".") if var.default else ""
                self.stdout.write(
                    f"| `{var.name}` | `{default}` | {var.help} |"
                    if default
                    else f"| `{var.name}` | (empty) | {var.help} |"
                )
            return
        for var in sorted(VARIABLES.values(), key=lambda v: v.name):
            value = os.environ.get(var.name)
            shown = "(default)" if value is None else ("***" if _secret(var.name) else value)
            self.stdout.write(f"{var.name:38} {shown}")


def _secret(name: str) -> bool:
    # DSNs carry passwords too.
    return any(word in name for word in ("SECRET", "PASSWORD", "TOKEN", "DATABASE_URL", "DATAPLANE_POSTGRES"))


def _base_dir() -> Any:
    return BASE_DIR
