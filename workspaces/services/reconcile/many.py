"""Reconciling many workspaces at once: the periodic pass's work, set-based where one workspace's path is not.

``workspaces_reconcile_many`` claims every workspace it is given with one statement, plans those that need an
``apply`` together (a fixed number of queries: links, valid grants, one signing-key lookup, renewed
credentials in one write), sends the applies to the connector on a small thread pool (the API server handles
concurrent requests; each call waits on the network, not on Python), and records what was observed in one
transaction with one statement per table. What it records is exactly what ``workspace_reconcile`` records for
each of them. Everything else (a delete, a stop, a status check, a workspace whose desired state changed while
this ran, a connector error) goes through the one-workspace path, so there is a single definition of each.
"""

from __future__ import annotations

import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from uuid import UUID

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from connectors.workspaces import get_connector
from connectors.workspaces.base import WorkspaceConnector, WorkspaceConnectorError, WorkspaceStatus
from steward.errors import BackendUnavailable
from workspaces.choices import DesiredState, WorkspaceState
from workspaces.models import Workspace
from workspaces.services.events import deferred_writes, transition
from workspaces.services.reconcile.one import _reconcile_once, reconcile_lease, workspace_reconcile
from workspaces.services.reconcile.plan import _Plan, _plans
from workspaces.services.reconcile.record import (
    _describe,
    _failed,
    _observe,
    _record_mounts,
    _stop_for_lack_of_data,
    _unavailable,
)

__all__ = ["RECONCILE_THREADS", "workspaces_reconcile_many"]

logger = logging.getLogger(__name__)

#: Connector calls in flight at once for one batch.
RECONCILE_THREADS = 8


def workspaces_reconcile_many(
    *, workspace_ids: list[UUID], now: datetime | None = None, threads: int = RECONCILE_THREADS
) -> dict[UUID, str | None]:
    """Drive these workspaces to their desired states; each workspace's state as left (``None``: another
    reconciler holds it, or it does not exist). Idempotent, and safe beside any number of other reconcilers.

    Unlike ``workspace_reconcile`` it does not raise ``BackendUnavailable``: the error is recorded on each
    workspace it hit (with its ``retry_at``), and the periodic pass retries them."""
    holder = uuid.uuid4().hex
    claimed = _claim_many(workspace_ids, holder)
    states: dict[UUID, str | None] = dict.fromkeys(workspace_ids)
    again: list[UUID] = []
    try:
        workspaces = list(Workspace.objects.select_related("owner", "template", "project").filter(pk__in=claimed))
        versions = {w.pk: w.version for w in workspaces}
        at = now or timezone.now()
        to_apply = [w for w in workspaces if _applies(w)]
        plans = _plans(to_apply, at) if to_apply else {}
        to_apply = [w for w in to_apply if _needs_apply(w, plans[w.pk])]
        apply_ids = {w.pk for w in to_apply}
        connector = get_connector()
        outcomes = _apply_all(connector, [(w, plans[w.pk]) for w in to_apply], threads)
        applied = [(w, plans[w.pk], outcomes[w.pk]) for w in to_apply if isinstance(outcomes[w.pk], WorkspaceStatus)]
        if applied:
            with transaction.atomic(), deferred_writes():
                for workspace, plan, status in applied:
                    _record_apply(workspace, plan, status, at)  # type: ignore[arg-type]
        for workspace in to_apply:
            outcome = outcomes[workspace.pk]
            if isinstance(outcome, BackendUnavailable):
                _unavailable(workspace, outcome, at)
            elif isinstance(outcome, WorkspaceConnectorError):
                _failed(workspace, _describe(outcome), at)
        for workspace in workspaces:
            if workspace.pk in apply_ids:
                continue
            try:
                _reconcile_once(workspace, now=at)
            except BackendUnavailable:
                pass  # recorded on the workspace; the periodic pass retries at its retry_at
        current = dict(Workspace.objects.filter(pk__in=list(versions)).values_list("pk", "version"))
        again = [pk for pk, version in versions.items() if current.get(pk, version) != version]
        states.update((w.pk, w.state) for w in workspaces)
    finally:
        _release_many(claimed, holder)
    for workspace_id in again:  # the desired state changed meanwhile: the one-workspace path goes round again
        try:
            done = workspace_reconcile(workspace_id=workspace_id, now=now)
        except BackendUnavailable:
            continue
        states[workspace_id] = done.state if done else None
    return states


def _applies(workspace: Workspace) -> bool:
    """Handled here (the common case: make it run): the current connector, desired running, not failed for
    this very request, not deleted."""
    return (
        workspace.connector == settings.STEWARD_WORKSPACE_CONNECTOR
        and workspace.desired_state == DesiredState.RUNNING
        and workspace.state != WorkspaceState.DELETED
        and not (workspace.state == WorkspaceState.FAILED and workspace.failed_version == workspace.version)
    )


def _needs_apply(workspace: Workspace, plan: _Plan) -> bool:
    """As ``_run`` decides: not running yet, or the mounts or credentials differ from what was applied."""
    settled = workspace.state in (WorkspaceState.RUNNING, WorkspaceState.PROVISIONING)
    return not settled or plan.fingerprint != workspace.applied_fingerprint


def _apply_all(
    connector: WorkspaceConnector, work: list[tuple[Workspace, _Plan]], threads: int
) -> dict[UUID, WorkspaceStatus | Exception]:
    """``apply`` each spec, ``threads`` at a time; each workspace's status, or the connector error it got."""

    def apply(item: tuple[Workspace, _Plan]) -> WorkspaceStatus | Exception:
        try:
            return connector.apply(item[1].spec)
        except (BackendUnavailable, WorkspaceConnectorError) as exc:
            return exc

    if len(work) <= 1 or threads <= 1:
        return {w.pk: apply((w, p)) for w, p in work}
    with ThreadPoolExecutor(min(threads, len(work))) as pool:
        return {w.pk: outcome for (w, _), outcome in zip(work, pool.map(apply, work), strict=True)}


def _record_apply(workspace: Workspace, plan: _Plan, status: WorkspaceStatus, now: datetime) -> None:
    """What ``_run`` records after an accepted ``apply`` (inside the caller's transaction)."""
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


def _claim_many(workspace_ids: list[UUID], holder: str) -> list[UUID]:
    """Claim every one of these workspaces that no live reconciler holds (one statement); the ones claimed."""
    if not workspace_ids:
        return []
    now = timezone.now()
    table = connection.ops.quote_name(Workspace._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET lease_until = %s, lease_holder = %s "
            "WHERE id = ANY(%s) AND (lease_until IS NULL OR lease_until <= %s) RETURNING id",
            [now + reconcile_lease(), holder, list(workspace_ids), now],
        )
        return [row[0] for row in cursor.fetchall()]


def _release_many(workspace_ids: list[UUID], holder: str) -> None:
    if workspace_ids:
        Workspace.objects.filter(Q(pk__in=workspace_ids), lease_holder=holder).update(lease_until=None, lease_holder="")
