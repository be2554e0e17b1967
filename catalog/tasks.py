"""Catalog background work: keep the search projection in step with committed changes."""

from __future__ import annotations

from celery import shared_task

from steward.errors import BackendUnavailable


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


@shared_task(name="catalog.popularity_flush", acks_late=True)
def popularity_flush_task() -> int:
    """Push assets whose usage counters moved to the search index (periodic, batched)."""
    from catalog.services.popularity import popularity_flush

    return popularity_flush()
