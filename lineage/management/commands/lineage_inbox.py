"""Queued lineage ingestion's inbox: what waits, what failed; apply it now or retry the failures."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from tqdm import tqdm

from lineage.services import inbox


class Command(BaseCommand):
    help = (
        "Show the queued lineage events (STEWARD_LINEAGE_INGEST=queued or Prefer: respond-async) that wait or failed; "
        "--drain applies the waiting ones now, with progress; --retry-failed queues the failed ones again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--drain", action="store_true", help="apply every waiting event now, in this process")
        parser.add_argument("--retry-failed", action="store_true", help="put the failed events back in the queue")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["retry_failed"]:
            self.stdout.write(f"{inbox.retry_failed()} failed event(s) queued again.")
        if options["drain"]:
            pending = inbox.status(failures=0).pending
            with tqdm(total=pending, unit="event", disable=options["verbosity"] == 0, file=self.stderr) as bar:
                result = inbox.drain(progress=lambda r: bar.update(r.taken - bar.n))
            self.stdout.write(
                f"Applied {result.applied} event(s) ({result.duplicates} duplicate(s)) in {result.batches} "
                f"batch(es); {result.failed} could not be applied."
            )
        state = inbox.status(failures=20)
        since = f", the oldest received {state.oldest_pending_at:%Y-%m-%d %H:%M:%S}" if state.oldest_pending_at else ""
        limit = f" (limit {state.limit:,}: at it, queued calls are answered 503)" if state.limit else ""
        self.stdout.write(f"{state.pending} event(s) waiting{since}{limit}; {state.failed} failed.")
        for failure in state.failures:
            self.stdout.write(
                f"  #{failure['id']} from {failure['received_by'] or '(removed account)'} at "
                f"{failure['received_at']:%Y-%m-%d %H:%M:%S}: {failure['error']}"
            )
        if state.failed:
            self.stdout.write("Fix the cause (e.g. give the producer its namespace back), then run --retry-failed.")
