"""Catalog background work: keep the search projection in step with committed changes."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.conf import settings

from steward.errors import BackendUnavailable
from steward.tasks import coalesced_take


@shared_task(
    name="catalog.search_index",
    acks_late=True,
    autoretry_for=(BackendUnavailable,),
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=None,
)
def search_index_task(kind: str, ids: list[str]) -> int:
    """(Re)index these assets from the database; ids that no longer exist are removed. Idempotent."""
    from catalog.services.search import search_index

    return search_index(kind=kind, ids=ids)


@shared_task(
    name="catalog.search_index_pending",
    acks_late=True,
    autoretry_for=(BackendUnavailable,),
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=None,
    bind=True,
)
def search_index_pending_task(self: Any, kind: str) -> int:
    """(Re)index every asset of ``kind`` pending in the coalesced set (``catalog.search.index_later``), in
    batches; returns how many. Idempotent."""
    from catalog.services.search import search_index

    return coalesced_take(
        f"search_index:{kind}",
        settings.STEWARD_SEARCH_INDEX_BATCH,
        lambda ids: search_index(kind=kind, ids=ids),
        claim=self.request.id or "direct",
    )


@shared_task(name="catalog.popularity_flush", acks_late=True)
def popularity_flush_task() -> int:
    """Push assets whose usage counters moved to the search index (periodic, batched)."""
    from catalog.services.popularity import popularity_flush

    return popularity_flush()
