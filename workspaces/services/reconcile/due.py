"""The periodic pass: remove orphans, find the workspaces that need work, queue one task each."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from connectors.workspaces import get_connector
from connectors.workspaces.base import (
    WorkspaceConnectorError,
    WorkspaceStatus,
)
from connectors.workspaces.base import WorkspaceState as Observed
from governance.selectors import grants_valid_at
from steward.errors import BackendUnavailable
from workspaces.choices import DesiredState, WorkspaceState
from workspaces.constants import CREDENTIALS_RENEW_BEFORE
from workspaces.models import Workspace, WorkspaceDataset

__all__ = ["RECONCILE_BATCH", "PassReport", "workspaces_due", "workspaces_reconcile_due"]

#: Workspaces per reconcile task queued by the periodic pass (``workspaces_reconcile_many``).
RECONCILE_BATCH = 100

logger = logging.getLogger(__name__)


@dataclass
class PassReport:
    """What one periodic pass found: workspaces looked at, due for work, orphans removed, connector reachable."""

    checked: int = 0
    due: int = 0
    orphans_removed: int = 0
    reachable: bool = True

    def counts(self) -> dict[str, int]:
        return {
            "checked": self.checked,
            "due": self.due,
            "orphans_removed": self.orphans_removed,
            "reachable": int(self.reachable),
        }


def workspaces_due(*, now: datetime, observed: dict[UUID, WorkspaceStatus] | None) -> tuple[list[UUID], int]:
    """Workspaces of the current connector that need a reconcile now, and how many were looked at.

    ``observed``: ``list_managed``'s answer, or ``None`` when the connector could not be asked (then only
    workspaces with work to do are due, and each records the error). Two queries for any number.
    """
    return _due(_rows(), now=now, observed=observed)


_Row = tuple[UUID, str, str, int, int | None, datetime | None]


def _rows() -> list[_Row]:
    """Every workspace of the current connector that is not deleted, as ``workspaces_due`` reads it."""
    return list(
        Workspace.objects.filter(connector=settings.STEWARD_WORKSPACE_CONNECTOR)
        .exclude(state=WorkspaceState.DELETED)
        .order_by()
        .values_list("pk", "desired_state", "state", "version", "failed_version", "retry_at")
    )


def _due(rows: list[_Row], *, now: datetime, observed: dict[UUID, WorkspaceStatus] | None) -> tuple[list[UUID], int]:
    due: list[UUID] = []
    settled: list[UUID] = []
    for pk, desired, state, version, failed_version, retry_at in rows:
        if retry_at is not None and retry_at > now:
            continue
        if state == WorkspaceState.FAILED and failed_version == version:
            continue
        seen = observed.get(pk) if observed is not None else None
        if desired == DesiredState.DELETED:
            due.append(pk)
        elif desired == DesiredState.STOPPED:
            if state != WorkspaceState.STOPPED or (seen is not None and seen.state != Observed.STOPPED):
                due.append(pk)
        elif state not in (WorkspaceState.RUNNING, WorkspaceState.PROVISIONING):
            due.append(pk)  # requested, stopped, stopping, or failed and asked again: apply
        elif observed is not None and (seen is None or seen.state != state):
            due.append(pk)  # gone, or changed (provisioning -> running, running -> failed)
        else:
            # As recorded (or the connector cannot be asked: then only real work is sent to it, so an outage
            # does not turn every workspace into a failing call): only a change of mounts makes it due.
            settled.append(pk)
    if settled:
        due.extend(_mounts_changed(settled, now))
    return due, len(rows)


def _mounts_changed(workspace_ids: list[UUID], now: datetime) -> set[UUID]:
    """Running workspaces whose mounts should change: a grant became invalid (or valid), or credentials near
    their end.

    One query that returns only the links that changed (each link's grants checked with an index lookup in the
    database): a pass over 5,000 unchanged workspaces reads no link, rather than all 10,000 and their grants.
    The links are found through their workspace (this connector's, not deleted: the rows ``workspaces_due``
    read), not by a list of thousands of ids.
    """
    valid = grants_valid_at(at=now).values("pk")
    links = (
        WorkspaceDataset.objects.filter(workspace__connector=settings.STEWARD_WORKSPACE_CONNECTOR)
        .exclude(workspace__state=WorkspaceState.DELETED)
        .order_by()
    )
    ok = Q(grant_id__in=valid) & (Q(source_grant_id__isnull=True) | Q(source_grant_id__in=valid))
    not_ok = (
        ~Q(grant_id__in=valid)
        | Q(grant_id__isnull=True)
        | (Q(source_grant_id__isnull=False) & ~Q(source_grant_id__in=valid))
    )
    renew = Q(
        mounted=True,
        credentials_expire_at__isnull=False,
        credentials_expire_at__lt=now + CREDENTIALS_RENEW_BEFORE,
        grant__valid_until__isnull=False,
    ) & Q(credentials_expire_at__lt=F("grant__valid_until"))
    changed = links.filter((ok & Q(mounted=False)) | (not_ok & Q(mounted=True)) | renew)
    wanted = set(workspace_ids)
    return {pk for pk in changed.values_list("workspace_id", flat=True).distinct() if pk in wanted}


def workspaces_reconcile_due(
    *, now: datetime | None = None, dispatch: Callable[[UUID], object] | None = None
) -> PassReport:
    """The periodic pass: find what needs work and hand each workspace to ``dispatch`` (default: one task per
    ``RECONCILE_BATCH`` workspaces, each reconciling its batch with ``workspaces_reconcile_many``).

    Workspaces the connector runs (within its scope: the Kubernetes namespace prefix, the local state
    directory) that Steward does not know, or knows as deleted, are removed.
    """
    now = now or timezone.now()
    report = PassReport()
    connector = get_connector()
    try:
        observed: dict[UUID, WorkspaceStatus] | None = connector.list_managed()
    except BackendUnavailable as exc:
        logger.warning("workspace connector unreachable in the periodic pass: %s", exc)
        observed, report.reachable = None, False
    rows = _rows()  # read once: the workspaces Steward knows (for the orphans) and what is due
    if observed:
        active = {row[0] for row in rows}
        for orphan in set(observed) - active:
            try:
                connector.delete(orphan)
            except (BackendUnavailable, WorkspaceConnectorError) as exc:
                logger.warning("could not remove orphan workspace %s: %s", orphan, exc)
                continue
            report.orphans_removed += 1
            logger.info("orphan workspace removed", extra={"workspace": str(orphan)})
    due, report.checked = _due(rows, now=now, observed=observed)
    report.due = len(due)
    if dispatch is None:
        from workspaces.tasks import workspaces_reconcile_many_task

        # Batches: a batch's workspaces are planned with a few queries and applied concurrently.
        for first in range(0, len(due), RECONCILE_BATCH):
            workspaces_reconcile_many_task.delay([str(pk) for pk in due[first : first + RECONCILE_BATCH]])
        return report
    for workspace_id in due:
        dispatch(workspace_id)
    return report
