"""Rotate the grant-token signing key and delete retired keys whose tokens have all expired."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand

from governance.services.signing import JWKS_MAX_AGE, maintain, purge_retired_keys, rotate


class Command(BaseCommand):
    help = (
        "Start signing grant tokens with a new key (now, or --publish-ahead seconds from now so cached JWKS "
        "documents already hold it); retired keys stay published until their tokens expire, then are deleted."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--if-due",
            action="store_true",
            help="Rotate only when the key is older than STEWARD_SIGNING_KEY_ROTATION_HOURS (the periodic task).",
        )
        parser.add_argument(
            "--publish-ahead",
            type=int,
            default=0,
            metavar="SECONDS",
            help=f"Publish the new key this long before it signs (routine rotation: {JWKS_MAX_AGE}). Default 0.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["if_due"]:
            result = maintain()
            rotated, purged = result["rotated"], result["purged"]
        else:
            if options["publish_ahead"] < 0:
                self.stderr.write(self.style.ERROR("--publish-ahead must not be negative"))
                raise SystemExit(2)
            rotated = rotate(publish_ahead=timedelta(seconds=options["publish_ahead"])).kid
            purged = purge_retired_keys()
        self.stdout.write(f"new signing key: {rotated}" if rotated else "signing key not due for rotation")
        for kid in purged:
            self.stdout.write(f"deleted retired key {kid}")
        self.stdout.write(self.style.SUCCESS("done"))
