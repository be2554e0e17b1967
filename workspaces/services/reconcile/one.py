"""Reconciling one workspace: claim it, act through its connector (delete, stop, run), go round again."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from connectors.workspaces import get_connector
from connectors.workspaces.base import WorkspaceConnector, WorkspaceConnectorError
from connectors.workspaces.base import WorkspaceState as Observed
from steward.errors import BackendUnavailable
from workspaces.choices import DesiredState, EventKind, WorkspaceState
from workspaces.models import Workspace, WorkspaceDataset
from workspaces.services.events import event_add, transition
from workspaces.services.reconcile.plan import _plan
from workspaces.services.reconcile.record import (
    _describe,
    _failed,
    _note,
    _observe,
    _record_mounts,
    _stop_for_lack_of_data,
    _succeeded,
    _unavailable,
)

__all__ = ["MAX_ROUNDS", "workspace_reconcile"]

# Rounds of one reconcile when the desired state keeps changing under it (the last request is handled by the
# task that request queued, so a bound here loses nothing).
MAX_ROUNDS = 3


def workspace_reconcile(*, workspace_id: UUID, now: datetime | None = None) -> Workspace | None:
    """Drive one workspace to its desired state. Idempotent; safe to call any time, from any number of workers.

    Returns the workspace as left, or ``None`` when it does not exist or another reconciler holds it (that
    one re-reads the desired state when it finishes). Raises ``BackendUnavailable`` (after recording it)
    when the connector cannot be reached. ``now`` (for tests) is the time grants are judged at.
    """
    holder = uuid.uuid4().hex
    if not _claim(workspace_id, holder):
        return None
    workspace: Workspace | None = None
    try:
        for _ in range(MAX_ROUNDS):
            workspace = Workspace.objects.select_related("owner", "template", "project").filter(pk=workspace_id).first()
            if workspace is None:
                return None
            version = workspace.version
            _reconcile_once(workspace, now=now or timezone.now())
            if Workspace.objects.filter(pk=workspace_id, version=version).exists():
                break
        return workspace
    finally:
        _release(workspace_id, holder)


def reconcile_lease() -> timedelta:
    """How long a claim lasts unless released (``STEWARD_WORKSPACE_RECONCILE_LEASE_SECONDS``): a crashed worker's
    claim runs out then. Longer than the slowest connector call sequence (local start_timeout, Kubernetes)."""
    return timedelta(seconds=settings.STEWARD_WORKSPACE_RECONCILE_LEASE_SECONDS)


def _claim(workspace_id: UUID, holder: str) -> bool:
    now = timezone.now()
    return bool(
        Workspace.objects.filter(pk=workspace_id)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lte=now))
        .update(lease_until=now + reconcile_lease(), lease_holder=holder)
    )


def _release(workspace_id: UUID, holder: str) -> None:
    Workspace.objects.filter(pk=workspace_id, lease_holder=holder).update(lease_until=None, lease_holder="")


def _reconcile_once(workspace: Workspace, *, now: datetime) -> None:
    current = settings.STEWARD_WORKSPACE_CONNECTOR
    if workspace.connector != current:
        if workspace.state != WorkspaceState.DELETED:
            _note(
                workspace,
                f"this workspace runs on the {workspace.connector} connector, but Steward now uses {current}; "
                "an operator must move or delete it",
                now,
            )
        return
    if workspace.state == WorkspaceState.DELETED:
        return
    if workspace.state == WorkspaceState.FAILED and workspace.failed_version == workspace.version:
        return  # the same request failed already: wait for the owner to ask again
    connector = get_connector()
    try:
        if workspace.desired_state == DesiredState.DELETED:
            _delete(workspace, connector, now)
        elif workspace.desired_state == DesiredState.STOPPED:
            _stop(workspace, connector, now)
        else:
            _run(workspace, connector, now)
    except BackendUnavailable as exc:
        _unavailable(workspace, exc, now)
        raise
    except WorkspaceConnectorError as exc:
        _failed(workspace, _describe(exc), now)


def _delete(workspace: Workspace, connector: WorkspaceConnector, now: datetime) -> None:
    connector.delete(workspace.pk)
    with transaction.atomic():
        WorkspaceDataset.objects.filter(workspace=workspace).update(
            mounted=False, credentials="", credentials_expire_at=None
        )
        transition(
            workspace, WorkspaceState.DELETED, message=f"removed by the {workspace.connector} connector", now=now
        )
        _succeeded(workspace, url="", message="", now=now)


def _stop(workspace: Workspace, connector: WorkspaceConnector, now: datetime) -> None:
    status = connector.stop(workspace.pk)
    with transaction.atomic():
        if workspace.state == WorkspaceState.STOPPED and status.state in (Observed.STOPPED, Observed.DELETED):
            pass  # already recorded
        elif workspace.state == WorkspaceState.REQUESTED:
            transition(workspace, WorkspaceState.STOPPED, message="stopped before it was provisioned", now=now)
        else:
            transition(workspace, WorkspaceState.STOPPING, message="stopping", now=now)
            if status.state in (Observed.STOPPED, Observed.DELETED):
                transition(workspace, WorkspaceState.STOPPED, message=status.message or "stopped", now=now)
        _succeeded(workspace, url=status.url or workspace.url, message=status.message, now=now)


def _run(workspace: Workspace, connector: WorkspaceConnector, now: datetime) -> None:
    plan = _plan(workspace, now)
    needs_apply = workspace.state != WorkspaceState.RUNNING and workspace.state != WorkspaceState.PROVISIONING
    needs_apply = needs_apply or plan.fingerprint != workspace.applied_fingerprint
    if not needs_apply:
        status = connector.status(workspace.pk)
        if status.state in (Observed.RUNNING, Observed.PROVISIONING, Observed.FAILED):
            with transaction.atomic():
                _observe(workspace, status, now)
            return
        event_add(
            workspace,
            kind=EventKind.TRANSITION,
            message=f"the connector reports it {status.state} ({status.message or 'no message'}); applying again",
            now=now,
        )
    status = connector.apply(plan.spec)
    with transaction.atomic():
        _record_mounts(workspace, plan, now)
        workspace.applied_fingerprint = plan.fingerprint
        if workspace.state not in (WorkspaceState.RUNNING, WorkspaceState.PROVISIONING):
            transition(
                workspace,
                WorkspaceState.PROVISIONING,
                message=f"applied by the {workspace.connector} connector",
                now=now,
            )
        _observe(workspace, status, now)
        if plan.none_left:
            _stop_for_lack_of_data(workspace, plan, now)
