"""Following grant changes: revoke derived workspace grants, and name the workspaces to reconcile."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from django.db.models import Q
from django.utils import timezone

from governance.services.workspace_grants import workspace_grants_revoke
from workspaces.choices import WorkspaceState
from workspaces.models import WorkspaceDataset

__all__ = ["workspace_grants_follow"]


def workspace_grants_follow(*, grant_ids: list[UUID], now: datetime | None = None) -> list[UUID]:
    """Grants changed: revoke workspace grants whose owner's grant was revoked, and return the workspaces that
    should be reconciled (those mounting any of these grants). Idempotent."""
    now = now or timezone.now()
    links = list(
        WorkspaceDataset.objects.filter(Q(grant_id__in=grant_ids) | Q(source_grant_id__in=grant_ids))
        .exclude(workspace__state=WorkspaceState.DELETED)
        .select_related("source_grant", "grant")
    )
    for link in links:
        source, own = link.source_grant, link.grant
        if source is None or own is None or own.revoked_at is not None:
            continue
        if source.revoked_at is not None and source.revoked_at <= now:
            workspace_grants_revoke(
                workspace_id=link.workspace_id,
                grant_ids=[own.pk],
                reason=f"the owner's grant {source.pk} was revoked",
                now=now,
            )
    return sorted({link.workspace_id for link in links}, key=str)
