"""Crawls in the background: one task per run (at least once, retried while Steward's database is unreachable),
and the periodic pass (beat, every ``STEWARD_SOURCE_DUE_SECONDS``) that queues the sources whose schedule is due."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.db import InterfaceError, OperationalError


@shared_task(
    bind=True,
    name="sources.crawl",
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=10,
    retry_backoff_max=600,
    max_retries=5,
)
def crawl_task(self: Any, run_id: str) -> str:
    """Execute one queued run; a run already finished (a redelivered message) is left as it is."""
    from uuid import UUID

    from sources.services.runs import run_execute

    return str(run_execute(run_id=UUID(run_id)).state)


@shared_task(name="sources.crawl_due", acks_late=True)
def crawl_due_task() -> int:
    from sources.services.runs import sources_due

    return len(sources_due())
