"""The spec a workspace should run with: mounts whose grants are valid now, credentials, the fingerprint."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from connectors.workspaces.base import (
    DataMount,
    WorkspaceSpec,
)
from governance.choices import GrantState
from governance.selectors import grants_valid_at
from governance.services.signing import signing_keys_cached
from steward.bulk import update_objects
from steward.canonical import digest
from steward.errors import DomainError
from workspaces.constants import CREDENTIALS_RENEW_BEFORE
from workspaces.credentials import CredentialsProvider, MountGrant, get_provider, seal, unseal
from workspaces.models import Workspace, WorkspaceDataset


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
    return _plans([workspace], now)[workspace.pk]


def _plans(workspaces: list[Workspace], now: datetime) -> dict[UUID, _Plan]:
    """``_plan`` for many workspaces with a fixed number of queries (links, valid grants, renewed credentials)."""
    by_workspace: dict[UUID, list[WorkspaceDataset]] = {w.pk: [] for w in workspaces}
    for link in WorkspaceDataset.objects.filter(workspace_id__in=list(by_workspace)).select_related(
        "dataset", "grant", "source_grant"
    ):
        by_workspace[link.workspace_id].append(link)
    ids = {g for links in by_workspace.values() for link in links for g in (link.grant_id, link.source_grant_id) if g}
    valid = set(grants_valid_at(at=now).filter(pk__in=ids).values_list("pk", flat=True)) if ids else set()
    provider = get_provider()
    renewed: list[WorkspaceDataset] = []
    with signing_keys_cached():  # one signing-key lookup for all the tokens issued here
        plans = {w.pk: _plan_links(w, by_workspace[w.pk], valid, now, provider, renewed) for w in workspaces}
    if renewed:
        update_objects(WorkspaceDataset, renewed, ["credentials", "credentials_expire_at"])
    return plans


def _plan_links(
    workspace: Workspace,
    links: list[WorkspaceDataset],
    valid: set[UUID],
    now: datetime,
    provider: CredentialsProvider,
    renewed: list[WorkspaceDataset],
) -> _Plan:
    mounts: list[DataMount] = []
    mounted: dict[int, WorkspaceDataset] = {}
    dropped: dict[int, tuple[WorkspaceDataset, str]] = {}
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
    spec = WorkspaceSpec(
        id=workspace.pk,
        owner=workspace.owner.get_username(),
        project=workspace.project.name if workspace.project else None,
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
