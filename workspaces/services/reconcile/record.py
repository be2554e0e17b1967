"""Recording what a reconcile saw and did: mounts, observed states, notes, errors and failures."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction

from connectors.workspaces.base import (
    WorkspaceConnectorError,
    WorkspaceStatus,
)
from connectors.workspaces.base import WorkspaceState as Observed
from steward.bulk import update_objects
from steward.errors import BackendUnavailable
from workspaces.choices import DesiredState, EventKind, WorkspaceState
from workspaces.constants import (
    RETRY_BACKOFF_MAX_SECONDS,
    RETRY_BACKOFF_SECONDS,
)
from workspaces.models import Workspace, WorkspaceDataset
from workspaces.services.events import error_record, event_add, pending_writes, transition
from workspaces.services.reconcile.plan import _Plan

logger = logging.getLogger(__name__)

# What the reconciler writes on a workspace (never the desired state: that is the owner's).
_RECONCILER_FIELDS = [
    "state",
    "url",
    "message",
    "attempts",
    "retry_at",
    "failed_version",
    "applied_fingerprint",
    "updated_at",
    "state_changed_at",
]


def _record_mounts(workspace: Workspace, plan: _Plan, now: datetime) -> None:
    added, removed, changed = [], [], []
    for link in plan.mounted.values():
        if not link.mounted:
            added.append(str(link.dataset))
            link.mounted, link.unmounted_reason = True, ""
            changed.append(link)
    for link, reason in plan.dropped.values():
        if link.mounted or link.unmounted_reason != reason:
            if link.mounted:
                removed.append(f"{link.dataset} ({reason})")
            link.mounted, link.unmounted_reason = False, reason
            link.credentials, link.credentials_expire_at = "", None
            changed.append(link)
    if changed:
        fields = ["mounted", "unmounted_reason", "credentials", "credentials_expire_at"]
        writes = pending_writes()
        if writes is not None:
            writes.links.update((link.pk, link) for link in changed)
            writes.link_fields.update(fields)
        else:
            update_objects(WorkspaceDataset, changed, fields)
    parts = []
    if added:
        parts.append("mounted " + ", ".join(added))
    if removed:
        parts.append("removed " + "; ".join(removed))
    if parts:
        event_add(workspace, kind=EventKind.MOUNTS, message="; ".join(parts), now=now)


def _observe(workspace: Workspace, status: WorkspaceStatus, now: datetime) -> None:
    """Record what the connector reports (inside the caller's transaction)."""
    if status.state == Observed.RUNNING:
        if workspace.state not in (WorkspaceState.PROVISIONING, WorkspaceState.RUNNING):
            transition(workspace, WorkspaceState.PROVISIONING, message="starting", now=now)
        transition(workspace, WorkspaceState.RUNNING, message=f"running at {status.url}", now=now)
    elif status.state == Observed.PROVISIONING:
        transition(workspace, WorkspaceState.PROVISIONING, message=status.message or "starting", now=now)
    elif status.state == Observed.FAILED:
        workspace.failed_version = workspace.version
        transition(workspace, WorkspaceState.FAILED, message=status.message or "failed", now=now)
    _succeeded(workspace, url=status.url or workspace.url, message=status.message, now=now)


def _stop_for_lack_of_data(workspace: Workspace, plan: _Plan, now: datetime) -> None:
    """Every dataset the workspace had mounted has lost its grant: ask for it to stop (the next round does)."""
    Workspace.objects.filter(pk=workspace.pk, desired_state=DesiredState.RUNNING).update(
        desired_state=DesiredState.STOPPED, version=workspace.version + 1, updated_at=now
    )
    reasons = "; ".join(f"{link.dataset}: {reason}" for link, reason in plan.dropped.values())
    event_add(
        workspace,
        kind=EventKind.REQUEST,
        message=f"stopped by Steward: no dataset grant remains ({reasons}); start it again to use it without data",
        now=now,
    )


def _succeeded(workspace: Workspace, *, url: str, message: str, now: datetime) -> None:
    workspace.url, workspace.message = url, message
    workspace.attempts, workspace.retry_at = 0, None
    workspace.updated_at = now
    writes = pending_writes()
    if writes is not None:
        writes.workspaces[workspace.pk] = (workspace, tuple(_RECONCILER_FIELDS))
    else:
        workspace.save(update_fields=_RECONCILER_FIELDS)


def _note(workspace: Workspace, message: str, now: datetime) -> None:
    if workspace.message != message:
        with transaction.atomic():
            error_record(workspace, message, now=now)
            Workspace.objects.filter(pk=workspace.pk).update(message=message, updated_at=now)


def _unavailable(workspace: Workspace, exc: BackendUnavailable, now: datetime) -> None:
    """Keep the state; record the error once (counted on repeats) and when the next attempt is due."""
    with transaction.atomic():
        attempts = (Workspace.objects.filter(pk=workspace.pk).values_list("attempts", flat=True).first() or 0) + 1
        delay = min(RETRY_BACKOFF_MAX_SECONDS, RETRY_BACKOFF_SECONDS * 2 ** min(attempts - 1, 10))
        retry_at = now + timedelta(seconds=delay)
        error_record(workspace, str(exc), now=now)
        Workspace.objects.filter(pk=workspace.pk).update(
            attempts=attempts,
            retry_at=retry_at,
            message=f"{exc} (attempt {attempts}; retrying at {retry_at.isoformat(timespec='seconds')})",
            updated_at=now,
        )
    workspace.attempts, workspace.retry_at = attempts, retry_at
    logger.warning("workspace connector unreachable", extra={"workspace": str(workspace.pk), "attempts": attempts})


def _failed(workspace: Workspace, message: str, now: datetime) -> None:
    with transaction.atomic():
        workspace.failed_version = workspace.version
        if workspace.state == WorkspaceState.FAILED:  # failed again after the owner asked again
            error_record(workspace, message, now=now)
        else:
            transition(workspace, WorkspaceState.FAILED, message=message, now=now)
        _succeeded(workspace, url=workspace.url, message=message, now=now)


def _describe(exc: WorkspaceConnectorError) -> str:
    fields = "; ".join(f"{p.field}: {p.message}" for p in exc.problems if p.field)
    return f"{exc.message} [{fields}]" if fields else exc.message
