"""Workspace background work: reconcile one workspace (on change), the periodic pass, following grant changes."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from steward.errors import BackendUnavailable

logger = logging.getLogger(__name__)


@shared_task(bind=True, name="workspaces.reconcile", acks_late=True, max_retries=None)
def workspace_reconcile_task(self: Any, workspace_id: str) -> str | None:
    """Drive one workspace to its desired state (queued after each request commits, and by the periodic pass).

    While the connector is unreachable the error is recorded on the workspace and the task retries at the
    workspace's ``retry_at`` (10 s doubling to 5 min). In-process eager runs do not retry: the periodic pass
    picks the workspace up once ``retry_at`` has passed.
    """
    from uuid import UUID

    from django.utils import timezone

    from workspaces.services import workspace_reconcile

    try:
        workspace = workspace_reconcile(workspace_id=UUID(workspace_id))
    except BackendUnavailable as exc:
        if self.request.is_eager:
            logger.warning("workspace %s: connector unreachable; the periodic pass retries (%s)", workspace_id, exc)
            return None
        from workspaces.models import Workspace

        retry_at = Workspace.objects.filter(pk=workspace_id).values_list("retry_at", flat=True).first()
        countdown = max(1.0, (retry_at - timezone.now()).total_seconds()) if retry_at else 10.0
        raise self.retry(exc=exc, countdown=countdown) from exc
    if workspace is None and not self.request.is_eager:
        # Another reconciler holds the workspace. A live one re-reads the desired state when it finishes; a killed
        # one (this message is its redelivery) never will, and its claim only runs out: come back then, or the
        # work would wait for the periodic pass. Retrying after a live holder finished is a cheap no-op.
        from workspaces.models import Workspace

        lease_until = (
            Workspace.objects.filter(pk=workspace_id, lease_until__gt=timezone.now())
            .values_list("lease_until", flat=True)
            .first()
        )
        if lease_until is not None:
            raise self.retry(countdown=max(1.0, (lease_until - timezone.now()).total_seconds() + 1))
    return workspace.state if workspace is not None else None


@shared_task(name="workspaces.reconcile_many", acks_late=True)
def workspaces_reconcile_many_task(workspace_ids: list[str]) -> dict[str, str | None]:
    """Reconcile a batch of workspaces (queued by the periodic pass). A connector outage is recorded on each
    workspace it hit, with its ``retry_at``; the next periodic pass retries those (no task retry here)."""
    from uuid import UUID

    from workspaces.services import workspaces_reconcile_many

    states = workspaces_reconcile_many(workspace_ids=[UUID(w) for w in workspace_ids])
    return {str(pk): state for pk, state in states.items()}


@shared_task(name="workspaces.reconcile_due", acks_late=True)
def workspaces_reconcile_due_task() -> dict[str, int]:
    """The periodic pass (beat, every ``STEWARD_WORKSPACE_RECONCILE_SECONDS``): one task per batch of workspaces
    due."""
    from workspaces.services import workspaces_reconcile_due

    return workspaces_reconcile_due().counts()


@shared_task(name="workspaces.grants_changed", acks_late=True)
def workspace_grants_changed_task(grant_ids: list[str]) -> int:
    """Grants changed (``governance.signals.grant_changed``): revoke derived workspace grants whose owner's grant
    was revoked, then reconcile every workspace mounting any of them. Idempotent."""
    from uuid import UUID

    from workspaces.services import workspace_grants_follow

    affected = workspace_grants_follow(grant_ids=[UUID(g) for g in grant_ids])
    for workspace_id in affected:
        workspace_reconcile_task.delay(str(workspace_id))
    return len(affected)
