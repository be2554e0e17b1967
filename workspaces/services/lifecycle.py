"""What users ask of workspaces: create, stop, start, delete. The reconciler does the work after commit."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from governance.services.access_requests.checks import DatasetRef, resolve_datasets
from governance.services.workspace_grants import workspace_grants_create, workspace_grants_revoke
from ledger import audit
from steward.errors import Conflict, FieldProblem, PermissionDenied, ValidationFailed
from steward.identity import Actor, authenticated_user, has_role
from steward.tasks import enqueue_on_commit
from workspaces.actions import WORKSPACE_CREATE, WORKSPACE_DELETE, WORKSPACE_START, WORKSPACE_STOP
from workspaces.choices import DesiredState, EventKind, WorkspaceState
from workspaces.models import Project, Template, Workspace, WorkspaceDataset
from workspaces.quantities import format_cpu, format_memory, parse_cpu, parse_memory
from workspaces.quotas import check_quota
from workspaces.selectors import WORKSPACE_ADMINS, can_manage, template_list
from workspaces.services.events import event_add

__all__ = ["workspace_create", "workspace_delete", "workspace_start", "workspace_stop"]

MAX_GPU = 16


def _reconcile_after_commit(workspace: Workspace) -> None:
    from workspaces.tasks import workspace_reconcile_task

    enqueue_on_commit(
        workspace_reconcile_task, str(workspace.pk), recovery="the periodic workspace reconcile will catch up."
    )


def _template(name: str) -> Template:
    found = template_list().filter(name=name).first()
    if found is None:
        known = ", ".join(template_list().values_list("name", flat=True)) or "none"
        raise ValidationFailed.one(
            "template", f"Unknown template {name!r}; choose one of: {known}.", "unknown_template"
        )
    return found


def _resources(raw: Mapping[str, Any] | None, template: Template) -> tuple[int, int, int]:
    """(millicores, bytes, GPUs): the template's defaults overridden by what was asked; 400 naming each bad one."""
    raw = raw or {}
    problems: list[FieldProblem] = []
    cpu, memory, gpu = template.cpu_millis, template.memory_bytes, template.gpu
    if raw.get("cpu") is not None:
        try:
            cpu = parse_cpu(raw["cpu"])
        except ValueError as exc:
            problems.append(FieldProblem("resources.cpu", str(exc), "invalid_quantity"))
    if raw.get("memory") is not None:
        try:
            memory = parse_memory(raw["memory"])
        except ValueError as exc:
            problems.append(FieldProblem("resources.memory", str(exc), "invalid_quantity"))
    if raw.get("gpu") is not None:
        value = raw["gpu"]
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_GPU:
            problems.append(FieldProblem("resources.gpu", f"A whole number from 0 to {MAX_GPU}.", "invalid_gpu"))
        else:
            gpu = value
    if problems:
        first = problems[0]
        raise ValidationFailed(f"{first.field}: {first.message}", problems=problems)
    return cpu, memory, gpu


def _project(actor: Actor, name: str | None) -> Project | None:
    if not name:
        return None
    project = Project.objects.filter(name=name).first()
    if project is None or not (
        project.members.filter(pk=authenticated_user(actor).pk).exists() or has_role(actor, *WORKSPACE_ADMINS)
    ):
        raise ValidationFailed.one("project", f"You are not a member of a project named {name!r}.", "unknown_project")
    return project


def _lock_user(actor: Actor) -> None:
    """Serialise one user's workspace writes, so two concurrent requests cannot both pass the quota check."""
    get_user_model().objects.select_for_update().filter(pk=authenticated_user(actor).pk).first()


def _check_manage(actor: Actor, workspace: Workspace) -> Workspace:
    if not can_manage(actor, workspace):
        raise PermissionDenied("Only the workspace's owner and admins change it.")
    locked = (
        Workspace.objects.select_for_update(of=("self",))
        .select_related("owner", "template", "project")
        .get(pk=workspace.pk)
    )
    if locked.desired_state == DesiredState.DELETED:
        raise Conflict("This workspace is deleted.")
    return locked


@transaction.atomic
def workspace_create(
    *,
    actor: Actor,
    template: str,
    datasets: Sequence[DatasetRef] = (),
    resources: Mapping[str, Any] | None = None,
    name: str = "",
    project: str | None = None,
    start: bool = True,
    now: datetime | None = None,
) -> Workspace:
    """Create a workspace for ``actor`` with ``datasets`` mounted; it starts after commit (the reconciler).

    ``start=False`` creates it stopped: nothing runs (and no connector is asked) until it is started; the
    compute quota is checked then.

    Every check comes before the first write: unknown template, invalid resources or project, over quota
    (400, naming each); unknown datasets (400, ``datasets[i]``); datasets no grant of the actor valid now
    covers (403, naming them); a toxic combination among them (409). The workspace gets its own grants,
    derived from the actor's (``governance.services.workspace_grants``).
    """
    if not getattr(actor, "is_authenticated", False):
        raise PermissionDenied("Log in to create a workspace.")
    now = now or timezone.now()
    chosen = _template(template)
    cpu, memory, gpu = _resources(resources, chosen)
    in_project = _project(actor, project)
    _lock_user(actor)
    if start:
        check_quota(actor, cpu_millis=cpu, memory_bytes=memory, gpu=gpu, new=True)
    else:
        check_quota(actor, cpu_millis=0, memory_bytes=0, gpu=0, new=True)
    resolved = resolve_datasets(actor, list(datasets)) if datasets else []
    workspace = Workspace(
        id=uuid.uuid4(),
        owner=authenticated_user(actor),
        project=in_project,
        template=chosen,
        cpu_millis=cpu,
        memory_bytes=memory,
        gpu=gpu,
        connector=settings.STEWARD_WORKSPACE_CONNECTOR,
        desired_state=DesiredState.RUNNING if start else DesiredState.STOPPED,
        state=WorkspaceState.REQUESTED if start else WorkspaceState.STOPPED,
        created_at=now,
        updated_at=now,
        state_changed_at=now,
    )
    workspace.name = (name or "").strip()[:200] or f"{chosen.name}-{str(workspace.id)[:8]}"
    pairs = workspace_grants_create(
        actor=actor, workspace_id=workspace.id, workspace_label=workspace.grant_label, datasets=resolved, now=now
    )
    workspace.save(force_insert=True)
    WorkspaceDataset.objects.bulk_create(
        [
            WorkspaceDataset(workspace=workspace, dataset=ds, source_grant=source, grant=own)
            for ds, (source, own) in zip(resolved, pairs, strict=True)
        ]
    )
    names = ", ".join(str(ds) for ds in resolved) or "no datasets"
    event_add(
        workspace,
        kind=EventKind.REQUEST,
        message=f"created from {chosen.name} with {format_cpu(cpu)} CPU, {format_memory(memory)} memory, "
        f"{gpu} GPU; datasets: {names}" + ("" if start else "; not started"),
        now=now,
        actor=actor.get_username(),
        to_state=workspace.state,
    )
    audit.record(
        actor=actor,
        action=WORKSPACE_CREATE,
        target=workspace,
        after={
            **workspace.snapshot(),
            "datasets": [str(ds.pk) for ds in resolved],
            "grants": [str(g.pk) for _, g in pairs],
        },
        at=now,
    )
    if start:
        _reconcile_after_commit(workspace)
    return workspace


@transaction.atomic
def workspace_stop(*, actor: Actor, workspace: Workspace, now: datetime | None = None) -> Workspace:
    """Ask for the workspace to stop (compute released, storage kept). Asking again changes nothing, unless the
    last attempt failed (then it is tried again)."""
    now = now or timezone.now()
    workspace = _check_manage(actor, workspace)
    if workspace.desired_state == DesiredState.STOPPED and workspace.state != WorkspaceState.FAILED:
        return workspace
    return _desire(actor, workspace, DesiredState.STOPPED, WORKSPACE_STOP, "stop requested", now)


@transaction.atomic
def workspace_start(*, actor: Actor, workspace: Workspace, now: datetime | None = None) -> Workspace:
    """Ask for the workspace to run again (also retries a failed one). Checks the compute quota again."""
    now = now or timezone.now()
    workspace = _check_manage(actor, workspace)
    if workspace.desired_state == DesiredState.RUNNING and workspace.state != WorkspaceState.FAILED:
        return workspace
    if workspace.desired_state != DesiredState.RUNNING:
        _lock_user(workspace.owner)
        check_quota(
            workspace.owner,
            cpu_millis=workspace.cpu_millis,
            memory_bytes=workspace.memory_bytes,
            gpu=workspace.gpu,
            new=False,
            exclude=workspace.pk,
        )
    return _desire(actor, workspace, DesiredState.RUNNING, WORKSPACE_START, "start requested", now)


@transaction.atomic
def workspace_delete(*, actor: Actor, workspace: Workspace, now: datetime | None = None) -> Workspace:
    """Ask for the workspace to be deleted: its grants are revoked now, the connector removes it after commit.

    Asking again changes nothing, unless the last attempt failed (then it is tried again).
    """
    now = now or timezone.now()
    if not can_manage(actor, workspace):
        raise PermissionDenied("Only the workspace's owner and admins delete it.")
    workspace = (
        Workspace.objects.select_for_update(of=("self",))
        .select_related("owner", "template", "project")
        .get(pk=workspace.pk)
    )
    if workspace.desired_state == DesiredState.DELETED and workspace.state != WorkspaceState.FAILED:
        return workspace
    workspace_grants_revoke(
        workspace_id=workspace.pk, reason=f"workspace {workspace.name} deleted", actor=actor, now=now
    )
    return _desire(actor, workspace, DesiredState.DELETED, WORKSPACE_DELETE, "delete requested", now)


def _desire(actor: Actor, workspace: Workspace, desired: str, action: str, message: str, now: datetime) -> Workspace:
    before = workspace.snapshot()
    workspace.desired_state = desired
    workspace.version += 1
    workspace.attempts, workspace.retry_at = 0, None
    workspace.updated_at = now
    workspace.save(update_fields=["desired_state", "version", "attempts", "retry_at", "updated_at"])
    event_add(workspace, kind=EventKind.REQUEST, message=message, now=now, actor=actor.get_username())
    audit.record(actor=actor, action=action, target=workspace, before=before, after=workspace.snapshot(), at=now)
    _reconcile_after_commit(workspace)
    return workspace
