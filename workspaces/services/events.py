"""Writing a workspace's events: requests, transitions, mount changes, errors (counted, never duplicated)."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings

from steward import metrics
from workspaces.choices import EventKind
from workspaces.models import Workspace, WorkspaceEvent

__all__ = ["error_record", "event_add", "transition"]


def event_add(
    workspace: Workspace,
    *,
    kind: str,
    message: str,
    now: datetime,
    actor: str = "",
    from_state: str = "",
    to_state: str = "",
) -> WorkspaceEvent:
    return WorkspaceEvent.objects.create(
        workspace=workspace,
        at=now,
        last_at=now,
        kind=kind,
        message=message,
        actor=actor,
        from_state=from_state,
        to_state=to_state,
    )


def transition(workspace: Workspace, to_state: str, *, message: str, now: datetime) -> bool:
    """Move ``workspace.state`` to ``to_state`` (in memory) and record the transition; ``False`` if already there.

    The caller saves the workspace in the same transaction.
    """
    if workspace.state == to_state:
        return False
    event_add(
        workspace,
        kind=EventKind.TRANSITION,
        message=message,
        now=now,
        from_state=workspace.state,
        to_state=to_state,
    )
    workspace.state = to_state
    workspace.state_changed_at = now
    return True


def error_record(workspace: Workspace, message: str, *, now: datetime) -> WorkspaceEvent:
    """Record an error; the same error as the latest event is counted on that event instead of repeated."""
    metrics.reconcile_error(settings.STEWARD_WORKSPACE_CONNECTOR)
    latest = WorkspaceEvent.objects.filter(workspace=workspace).order_by("-at", "-id").first()
    if latest is not None and latest.kind == EventKind.ERROR and latest.message == message:
        latest.repeats += 1
        latest.last_at = now
        latest.save(update_fields=["repeats", "last_at"])
        return latest
    return event_add(workspace, kind=EventKind.ERROR, message=message, now=now)
