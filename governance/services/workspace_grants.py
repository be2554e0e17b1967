"""Grants scoped to a workspace, derived from its owner's grants (called by the workspaces app).

A workspace never gets more than its owner holds: each of its grants copies one of the owner's grants valid
now (same dataset, privilege, approved level, policy version and request) and ends when that grant ends. A
workspace grant is then an ordinary grant with a workspace subject: decisions about ``workspace:<id>``, the
expiry sweep, suspension on reclassification (same ``approved_level``) and the ``grant_changed`` hook treat
it like any other. Revoking the owner's grant does not reach it here: the workspaces app hears the
``grant_changed`` announcement and revokes the derived grant with ``workspace_grants_revoke``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from catalog.models import Dataset
from governance.actions import GRANT_CREATE, GRANT_REVOKE
from governance.choices import GrantChange, GrantState
from governance.history_kinds import capture_grants
from governance.models import Grant, GrantSuspension
from governance.selectors import grants_valid_at, policy_current
from governance.services.access_requests.checks import Subject, check_toxic
from governance.signals import announce_grant_change
from ledger import audit
from ledger.audit import AuditEntry
from steward.bulk import update_objects
from steward.errors import FieldProblem, PermissionDenied
from steward.identity import Actor

__all__ = ["NotGranted", "workspace_grants_create", "workspace_grants_revoke"]


class NotGranted(PermissionDenied):
    """Some requested datasets are not covered by a grant of the user valid now (403, naming them)."""

    code = "not_granted"


def workspace_grants_create(
    *,
    actor: Actor,
    workspace_id: UUID,
    workspace_label: str,
    datasets: Sequence[Dataset],
    now: datetime | None = None,
) -> list[tuple[Grant, Grant]]:
    """Give a new workspace a grant for each dataset, derived from the actor's grant on it valid at ``now``.

    Returns ``(owner's grant, workspace grant)`` pairs in the order of ``datasets``. Raises ``NotGranted``
    (403) naming every dataset no grant of the actor covers now, and ``Conflict`` (409,
    ``toxic_combination``) when the datasets together would give the workspace every tag of a toxic
    combination of the policy in effect. Runs in the caller's transaction (atomic on its own otherwise).
    """
    now = now or timezone.now()
    datasets = list(datasets)
    if not datasets:
        return []
    with transaction.atomic():
        held: dict[UUID, Grant] = {}
        for grant in grants_valid_at(at=now, dataset_ids=[d.pk for d in datasets], user_id=actor.pk).filter(
            workspace_id__isnull=True
        ):
            best = held.get(grant.dataset_id)
            if best is None or grant.valid_until > best.valid_until:
                held[grant.dataset_id] = grant
        missing = [(i, d) for i, d in enumerate(datasets) if d.pk not in held]
        if missing:
            names = ", ".join(f"{d.namespace}/{d.name}" for _, d in missing)
            raise NotGranted(
                f"No grant of yours valid now covers: {names}. Request access to them first.",
                problems=[
                    FieldProblem(
                        f"datasets[{i}]",
                        f"No grant of yours valid now covers {d.namespace}/{d.name}.",
                        "not_granted",
                    )
                    for i, d in missing
                ],
            )
        check_toxic(policy_current(), Subject(None, workspace_id), datasets, now)
        pairs = [
            (
                held[d.pk],
                Grant(
                    workspace_id=workspace_id,
                    workspace_label=(workspace_label or "")[:200],
                    dataset_id=d.pk,
                    privilege=held[d.pk].privilege,
                    valid_from=now,
                    valid_until=held[d.pk].valid_until,
                    request_id=held[d.pk].request_id,
                    approved_level=held[d.pk].approved_level,
                    policy_version_id=held[d.pk].policy_version_id,
                    created_at=now,
                ),
            )
            for d in datasets
        ]
        Grant.objects.bulk_create([g for _, g in pairs])
        capture_grants([g.pk for _, g in pairs], at=now)
        audit.record_many(
            actor=actor,
            entries=[
                AuditEntry(
                    GRANT_CREATE,
                    "governance.grant",
                    str(g.pk),
                    str(g),
                    after={**g.snapshot(), "derived_from": str(source.pk)},
                    reason=f"for workspace {workspace_label or workspace_id}, from grant {source.pk}",
                )
                for source, g in pairs
            ],
            at=now,
        )
        announce_grant_change(GrantChange.CREATED, [g.pk for _, g in pairs])
    return pairs


def workspace_grants_revoke(
    *,
    workspace_id: UUID,
    reason: str,
    grant_ids: Sequence[UUID] | None = None,
    actor: Actor | None = None,
    now: datetime | None = None,
) -> list[UUID]:
    """Revoke a workspace's unrevoked grants (all, or those in ``grant_ids``) at ``now``. Idempotent.

    ``actor`` ``None`` records the system (the workspace was deleted, or the owner's grant went). Returns
    the ids revoked by this call.
    """
    now = now or timezone.now()
    with transaction.atomic():
        qs = Grant.objects.select_for_update().filter(workspace_id=workspace_id, revoked_at__isnull=True)
        if grant_ids is not None:
            qs = qs.filter(pk__in=list(grant_ids))
        grants = [g for g in qs if g.valid_until > now]
        if not grants:
            return []
        entries = []
        for g in grants:
            before = g.snapshot()
            g.revoked_at, g.revoke_reason, g.state = now, reason, GrantState.REVOKED
            entries.append(
                AuditEntry(GRANT_REVOKE, "governance.grant", str(g.pk), str(g), before, g.snapshot(), reason)
            )
        update_objects(Grant, grants, ["revoked_at", "revoke_reason", "state"])
        GrantSuspension.objects.filter(grant__in=grants, ended_at__isnull=True).update(
            ended_at=now, end_reason="revoked"
        )
        ids = [g.pk for g in grants]
        capture_grants(ids, at=now)
        audit.record_many(actor=actor, entries=entries, at=now)
        announce_grant_change(GrantChange.REVOKED, ids)
    return ids
