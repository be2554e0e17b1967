"""Connector background work: remove a revoked grant's data-plane access, reconcile periodically."""

from __future__ import annotations

from celery import shared_task

from steward.errors import BackendUnavailable


@shared_task(name="connectors.dataplane_reconcile", acks_late=True)
def dataplane_reconcile_task() -> dict[str, int]:
    """Reconcile every managed data plane with the grants in force (beat, when a selector is configured).

    No retry: the next beat run is the retry, and a run that fails part-way has changed nothing it should not.
    """
    from connectors.services import dataplane_reconcile

    return dataplane_reconcile().counts()


@shared_task(
    name="connectors.dataplane_remove",
    acks_late=True,
    autoretry_for=(BackendUnavailable,),
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=None,
)
def dataplane_remove_task(grant_id: str) -> bool:
    """Remove one grant's data-plane access. Idempotent; retries while the data plane is unreachable."""
    from uuid import UUID

    from connectors.services import dataplane_remove

    return dataplane_remove(grant_id=UUID(grant_id))
