"""Lineage background work: drain propagation changes and keep the graph projection in step."""

from __future__ import annotations

import logging

from celery import shared_task

from steward.errors import BackendUnavailable
from steward.tasks import coalesced_begin

logger = logging.getLogger(__name__)


@shared_task(name="lineage.propagation_drain", acks_late=True)
def propagation_drain_task() -> int:
    """Apply pending propagation changes; safe to run any number of times (also every minute by beat)."""
    from lineage.propagation import drain

    coalesced_begin("propagation_drain")  # changes committed from now on queue another drain
    return drain().changes


@shared_task(
    bind=True,
    name="lineage.graph_sync",
    acks_late=True,
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=None,
)
def graph_sync_task(self, job_ids: list[str]) -> int:
    """Project these jobs' edges into the graph backend from the database. Idempotent; retries with backoff
    while the engine is down (in-process eager runs log instead: ``manage.py graph_rebuild`` catches up)."""
    from uuid import UUID

    from lineage.graph import get_backend

    try:
        get_backend().sync_jobs([UUID(j) for j in job_ids])
    except BackendUnavailable as exc:
        if self.request.is_eager:
            logger.warning("graph projection not updated (%s); run manage.py graph_rebuild when it is back", exc)
            return 0
        raise self.retry(exc=exc, countdown=min(300, 2 ** min(self.request.retries, 8))) from exc
    return len(job_ids)


@shared_task(name="lineage.inbox_drain", acks_late=True)
def inbox_drain_task() -> int:
    """Apply the events queued ingestion accepted; safe to run any number of times (also every minute by beat).
    Queued ``STEWARD_LINEAGE_INBOX_LINGER_MS`` after the accept that queued it, so a burst is applied in batches."""
    from lineage.services.inbox import drain

    coalesced_begin("lineage_inbox")  # events accepted from now on queue another drain
    return drain().taken
