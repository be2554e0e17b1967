"""Writing a workspace's events: requests, transitions, mount changes, errors (counted, never duplicated)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings

from steward import metrics
from steward.bulk import update_objects
from workspaces.choices import EventKind
from workspaces.models import Workspace, WorkspaceDataset, WorkspaceEvent

__all__ = ["Writes", "deferred_writes", "error_record", "event_add", "pending_writes", "transition"]


@dataclass
class Writes:
    """Writes of many workspaces' reconciles, kept to be sent together (``deferred_writes``)."""

    events: list[WorkspaceEvent] = field(default_factory=list)
    workspaces: dict[object, tuple[Workspace, tuple[str, ...]]] = field(default_factory=dict)
    links: dict[int, WorkspaceDataset] = field(default_factory=dict)
    link_fields: set[str] = field(default_factory=set)


_PENDING: ContextVar[Writes | None] = ContextVar("workspace_writes", default=None)


def pending_writes() -> Writes | None:
    """The writes being deferred in this context, if any."""
    return _PENDING.get()


@contextmanager
def deferred_writes() -> Iterator[Writes]:
    """Inside: new events, workspace saves and mount updates are kept; at the end (inside the caller's
    transaction) they are written with one statement per table. Events keep their order."""
    writes = Writes()
    token = _PENDING.set(writes)
    try:
        yield writes
    finally:
        _PENDING.reset(token)
    WorkspaceEvent.objects.bulk_create(writes.events, batch_size=1_000)
    by_fields: dict[tuple[str, ...], list[Workspace]] = {}
    for workspace, fields in writes.workspaces.values():
        by_fields.setdefault(fields, []).append(workspace)
    for fields, workspaces in by_fields.items():
        update_objects(Workspace, workspaces, fields)
    if writes.links:
        update_objects(WorkspaceDataset, writes.links.values(), sorted(writes.link_fields))


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
    event = WorkspaceEvent(
        workspace=workspace,
        at=now,
        last_at=now,
        kind=kind,
        message=message,
        actor=actor,
        from_state=from_state,
        to_state=to_state,
    )
    writes = _PENDING.get()
    if writes is not None:
        writes.events.append(event)
    else:
        event.save(force_insert=True)
    return event


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
