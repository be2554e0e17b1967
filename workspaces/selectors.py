"""Workspace reads, restricted to who may see them and prefetched for the serializers."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db.models import Prefetch, Q, QuerySet

from steward.api.params import as_uuid
from steward.errors import NotFound
from steward.identity import Role, has_role
from workspaces.choices import WorkspaceState
from workspaces.models import Project, Template, Workspace, WorkspaceDataset, WorkspaceEvent

__all__ = [
    "LIST_EVENTS",
    "WORKSPACE_ADMINS",
    "can_manage",
    "template_list",
    "workspace_get",
    "workspace_list",
]

# Roles that see and manage every workspace.
WORKSPACE_ADMINS = (Role.ADMIN,)
# Events shown per workspace in a list (the detail shows all).
LIST_EVENTS = 10


def _visible_q(user: Any) -> Q:
    if has_role(user, *WORKSPACE_ADMINS):
        return Q()
    return Q(owner=user) | Q(project__in=Project.objects.filter(members=user).values("pk"))


def can_manage(user: Any, workspace: Workspace) -> bool:
    """The owner and admins stop, start and delete a workspace; project members only see it."""
    return workspace.owner_id == getattr(user, "pk", None) or has_role(user, *WORKSPACE_ADMINS)


def _prefetched(qs: QuerySet[Workspace], *, events: int | None) -> QuerySet[Workspace]:
    event_qs = WorkspaceEvent.objects.order_by("-at", "-id")
    return qs.select_related("owner", "project", "template").prefetch_related(
        Prefetch("datasets", queryset=WorkspaceDataset.objects.select_related("dataset", "grant")),
        Prefetch("events", queryset=event_qs[:events] if events else event_qs, to_attr="recent_events"),
    )


def workspace_list(*, user: Any, state: str | None = None) -> QuerySet[Workspace]:
    """Workspaces the user may see: their own, their projects', all for admins. Deleted ones only when
    ``state="deleted"`` is asked for. Each carries its datasets and its ``LIST_EVENTS`` latest events."""
    qs = Workspace.objects.filter(_visible_q(user))
    qs = qs.filter(state=state) if state else qs.exclude(state=WorkspaceState.DELETED)
    return _prefetched(qs, events=LIST_EVENTS)


def workspace_get(*, user: Any, pk: UUID | str) -> Workspace:
    """One workspace the user may see (deleted ones too), with every event; anything else is ``NotFound``."""
    found = (
        _prefetched(Workspace.objects.filter(_visible_q(user)), events=None).filter(pk=as_uuid(pk, "workspace")).first()
    )
    if found is None:
        raise NotFound("No such workspace.")
    return found


def template_list() -> QuerySet[Template]:
    """Templates a workspace may be created from."""
    return Template.objects.filter(enabled=True)
