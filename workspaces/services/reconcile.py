"""The reconciler: drives each workspace to its desired state through its connector, recording every step.

``workspace_reconcile`` handles one workspace. It claims the workspace (a lease, so two reconcilers never
act on one workspace at once), computes the spec (mounts: the datasets whose workspace grant *and* owner's
grant are valid now, with their credentials), calls the connector, records what it observed as
transitions and events, and goes round again if someone changed the desired state meanwhile. No database
transaction is held while the connector works.

- Desired ``running``: ``apply`` when the workspace is not running yet or its mounts or credentials differ
  from what the connector last accepted (``applied_fingerprint``), else only ``status``. When every dataset
  it had mounted has lost its grant, the spec is applied once without them (their credentials leave the
  workspace) and Steward stops the workspace (its storage stays; the owner may start it again, without data).
- Desired ``stopped``: ``stop``. Desired ``deleted``: ``delete`` (its grants were revoked by the request).
- ``BackendUnavailable``: the state stays, the error is recorded once (repeats are counted), ``retry_at``
  backs off (10 s doubling to 5 min), and the error is raised again for the task to retry.
- ``WorkspaceConnectorError`` (a 4xx such as 409 or 422): the workspace is ``failed`` with the message
  until its owner asks again (``failed_version``: a failure is not retried for the same request).

``workspaces_reconcile_due`` is the periodic pass: one ``list_managed`` call, removal of workspaces the
connector runs that Steward no longer knows, and one task per workspace that needs work, found with two
queries over all workspaces (so a pass over 500 unchanged workspaces costs no per-workspace call).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from connectors.workspaces import get_connector
from connectors.workspaces.base import (
    DataMount,
    WorkspaceConnector,
    WorkspaceConnectorError,
    WorkspaceSpec,
    WorkspaceStatus,
)
from connectors.workspaces.base import WorkspaceState as Observed
from governance.choices import GrantState
from governance.selectors import grants_valid_at
from governance.services.workspace_grants import workspace_grants_revoke
from steward.canonical import digest
from steward.errors import BackendUnavailable, DomainError
from workspaces.choices import DesiredState, EventKind, WorkspaceState
from workspaces.constants import (
    CREDENTIALS_RENEW_BEFORE,
    RECONCILE_LEASE,
    RETRY_BACKOFF_MAX_SECONDS,
    RETRY_BACKOFF_SECONDS,
)
from workspaces.credentials import MountGrant, get_provider, seal, unseal
from workspaces.models import Workspace, WorkspaceDataset
from workspaces.services.events import error_record, event_add, transition

__all__ = [
    "PassReport",
    "workspace_grants_follow",
    "workspace_reconcile",
    "workspaces_due",
    "workspaces_reconcile_due",
]

logger = logging.getLogger(__name__)

# Rounds of one reconcile when the desired state keeps changing under it (the last request is handled by the
# task that request queued, so a bound here loses nothing).
MAX_ROUNDS = 3
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


# --- one workspace ---------------------------------------------------------------------------------------------


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


def _claim(workspace_id: UUID, holder: str) -> bool:
    now = timezone.now()
    return bool(
        Workspace.objects.filter(pk=workspace_id)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lte=now))
        .update(lease_until=now + RECONCILE_LEASE, lease_holder=holder)
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


# --- the spec ----------------------------------------------------------------------------------------------------


@dataclass
class _Plan:
    spec: WorkspaceSpec
    fingerprint: str
    mounted: dict[int, WorkspaceDataset] = field(default_factory=dict)
    dropped: dict[int, tuple[WorkspaceDataset, str]] = field(default_factory=dict)
    none_left: bool = False


def _plan(workspace: Workspace, now: datetime) -> _Plan:
    """The spec the connector should hold now: mounts for the grants valid at ``now``, with credentials.

    New credentials are issued only when a mount has none or they near their end, and are stored before the
    connector is called, so a retry after a failure sends the same spec.
    """
    links = list(workspace.datasets.select_related("dataset", "grant", "source_grant"))
    ids = {g for link in links for g in (link.grant_id, link.source_grant_id) if g}
    valid = set(grants_valid_at(at=now).filter(pk__in=ids).values_list("pk", flat=True)) if ids else set()
    provider = get_provider()
    mounts: list[DataMount] = []
    mounted: dict[int, WorkspaceDataset] = {}
    dropped: dict[int, tuple[WorkspaceDataset, str]] = {}
    renewed: list[WorkspaceDataset] = []
    for link in links:
        reason = _why_not(link, valid, now)
        if reason:
            dropped[link.pk] = (link, reason)
            continue
        assert link.grant is not None
        until = min(g.valid_until for g in (link.grant, link.source_grant) if g is not None)
        credentials = unseal(link.credentials)
        if credentials is None or _renewal_due(link, until, now):
            try:
                issued = provider(
                    MountGrant(
                        grant_id=link.grant.pk,
                        subject=f"workspace:{workspace.pk}",
                        namespace=link.dataset.namespace,
                        name=link.dataset.name,
                        valid_until=until,
                    ),
                    now=now,
                )
            except DomainError as exc:  # e.g. the grant ends within the second: nothing to sign
                dropped[link.pk] = (link, exc.message)
                continue
            credentials = issued.values
            link.credentials, link.credentials_expire_at = seal(credentials), issued.expires_at
            renewed.append(link)
        mounted[link.pk] = link
        mounts.append(
            DataMount(
                dataset_namespace=link.dataset.namespace,
                dataset_name=link.dataset.name,
                grant_id=link.grant.pk,
                credentials=credentials,
                valid_until=until,
            )
        )
    if renewed:
        WorkspaceDataset.objects.bulk_update(renewed, ["credentials", "credentials_expire_at"])
    spec = WorkspaceSpec(
        id=workspace.pk,
        owner=workspace.owner.get_username(),
        project=workspace.project.name if workspace.project_id else None,
        template=workspace.template.spec(),
        resources=workspace.resources,
        mounts=mounts,
    )
    had_data = any(link.mounted for link in links)
    return _Plan(spec, _fingerprint(spec), mounted, dropped, none_left=had_data and not mounts)


def _why_not(link: WorkspaceDataset, valid: set[UUID], now: datetime) -> str:
    """Why a dataset cannot be mounted now ('' when it can)."""
    for grant, whose in ((link.source_grant, "the owner's grant"), (link.grant, "the workspace's grant")):
        if grant is None:
            if whose == "the owner's grant":
                continue  # none recorded: only the workspace's own grant counts
            return f"{whose} no longer exists"
        if grant.pk not in valid:
            state = grant.state_at(now)
            if state == GrantState.ACTIVE and grant.valid_from > now:
                return f"{whose} {grant.pk} is not valid yet"
            if state == GrantState.ACTIVE:
                state = GrantState.SUSPENDED  # suspended at ``now`` by the history, though not at present
            return f"{whose} {grant.pk} is {state}"
    return ""


def _renewal_due(link: WorkspaceDataset, until: datetime, now: datetime) -> bool:
    expires = link.credentials_expire_at
    if expires is None:
        return False
    return expires - now < CREDENTIALS_RENEW_BEFORE and expires < until


def _fingerprint(spec: WorkspaceSpec) -> str:
    """What the connector must hold, hashed: template, resources, owner, project and every mount's document."""
    body = {
        "owner": spec.owner,
        "project": spec.project,
        "template": [spec.template.name, spec.template.image, spec.template.command, spec.template.local_command],
        "resources": [spec.effective_resources.cpu, spec.effective_resources.memory, spec.effective_resources.gpu],
        # Each mount as its sorted-keys JSON, a string inside the hashed body: kept as it was so that stored
        # ``applied_fingerprint`` values still match (the canonical form around it is the old one on ASCII text).
        "mounts": sorted(
            (json.dumps(m.document(), sort_keys=True) for m in spec.mounts),
        ),
    }
    return digest(body)


# --- recording ---------------------------------------------------------------------------------------------------


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
        WorkspaceDataset.objects.bulk_update(
            changed, ["mounted", "unmounted_reason", "credentials", "credentials_expire_at"]
        )
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


# --- many workspaces ---------------------------------------------------------------------------------------------


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
    rows = list(
        Workspace.objects.filter(connector=settings.STEWARD_WORKSPACE_CONNECTOR)
        .exclude(state=WorkspaceState.DELETED)
        .values_list("pk", "desired_state", "state", "version", "failed_version", "retry_at")
    )
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
    their end."""
    links = list(
        WorkspaceDataset.objects.filter(workspace_id__in=workspace_ids).values_list(
            "workspace_id", "grant_id", "source_grant_id", "mounted", "credentials_expire_at", "grant__valid_until"
        )
    )
    ids = {g for row in links for g in (row[1], row[2]) if g}
    valid = set(grants_valid_at(at=now).filter(pk__in=ids).values_list("pk", flat=True)) if ids else set()
    changed: set[UUID] = set()
    for workspace_id, grant_id, source_id, mounted, expires, until in links:
        ok = grant_id in valid and (source_id is None or source_id in valid)
        renew = (
            mounted and expires is not None and expires - now < CREDENTIALS_RENEW_BEFORE and until and expires < until
        )
        if ok != mounted or renew:
            changed.add(workspace_id)
    return changed


def workspaces_reconcile_due(
    *, now: datetime | None = None, dispatch: Callable[[UUID], object] | None = None
) -> PassReport:
    """The periodic pass: find what needs work and hand each workspace to ``dispatch`` (default: a task each).

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
    if observed:
        active = set(
            Workspace.objects.filter(pk__in=list(observed), connector=settings.STEWARD_WORKSPACE_CONNECTOR)
            .exclude(state=WorkspaceState.DELETED)
            .values_list("pk", flat=True)
        )
        for orphan in set(observed) - active:
            try:
                connector.delete(orphan)
            except (BackendUnavailable, WorkspaceConnectorError) as exc:
                logger.warning("could not remove orphan workspace %s: %s", orphan, exc)
                continue
            report.orphans_removed += 1
            logger.info("orphan workspace removed", extra={"workspace": str(orphan)})
    due, report.checked = workspaces_due(now=now, observed=observed)
    report.due = len(due)
    if dispatch is None:
        from workspaces.tasks import workspace_reconcile_task

        def dispatch(workspace_id: UUID) -> object:
            return workspace_reconcile_task.delay(str(workspace_id))

    for workspace_id in due:
        dispatch(workspace_id)
    return report


# --- grants ------------------------------------------------------------------------------------------------------


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
