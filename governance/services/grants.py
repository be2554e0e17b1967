"""Grants after approval: revoke, suspend and resume on reclassification, expire (display state and hooks).

Decisions never rely on these writes happening on time: ``governance.authorization`` compares the grant's
window with the decision time. Revocation and suspension are written synchronously by the services below,
in the transaction of the change that caused them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from catalog.models import Dataset
from catalog.permissions import is_owner
from governance import notifications
from governance.actions import GRANT_EXPIRE, GRANT_RESUME, GRANT_REVOKE, GRANT_SUSPEND, REQUEST_WITHDRAW
from governance.choices import GrantChange, GrantState, RequestState
from governance.history_kinds import capture_grants, capture_requests
from governance.models import AccessRequest, Grant, GrantSuspension
from governance.services.access_requests import access_requests_escalate
from governance.services.access_requests.checks import rank
from governance.signals import announce_grant_change
from ledger import audit
from ledger.audit import AuditEntry
from steward.bulk import update_objects
from steward.errors import Conflict, PermissionDenied, ValidationFailed
from steward.identity import Actor, Role, authenticated_user, has_role
from steward.lookups import UUIDs

__all__ = ["can_revoke", "grant_revoke", "grants_expire", "grants_reassess", "on_reclassified"]

REVOKERS = (Role.DATA_STEWARD, Role.PRIVACY_OFFICER, Role.ADMIN)


def _holder_id(grant: Grant) -> int | None:
    if grant.user_id:
        return grant.user_id
    return grant.request.requester_id if grant.request else None


def can_revoke(user: Any, grant: Grant) -> bool:
    """The holder (giving it up), the dataset's owners, data stewards, privacy officers and admins."""
    return _holder_id(grant) == user.pk or has_role(user, *REVOKERS) or is_owner(user, grant.dataset)


@transaction.atomic
def grant_revoke(*, actor: Actor, grant: Grant, reason: str, now: datetime | None = None) -> Grant:
    """Revoke a grant at once, with a reason. Pending re-approvals of it are withdrawn."""
    now = now or timezone.now()
    if not (reason or "").strip():
        raise ValidationFailed.one("reason", "Say why the grant is revoked.", "required")
    grant = Grant.objects.select_for_update(of=("self",)).select_related("dataset", "request", "user").get(pk=grant.pk)
    if not can_revoke(actor, grant):
        raise PermissionDenied("Only the holder, the dataset's owners, stewards, privacy officers and admins revoke.")
    state = grant.state_at(now)
    if state in (GrantState.REVOKED, GrantState.EXPIRED):
        raise Conflict(f"This grant is already {state}.")
    before = grant.snapshot()
    grant.revoked_at, grant.revoked_by, grant.revoke_reason = now, authenticated_user(actor), reason.strip()
    grant.state = GrantState.REVOKED
    grant.save(update_fields=["revoked_at", "revoked_by", "revoke_reason", "state"])
    GrantSuspension.objects.filter(grant=grant, ended_at__isnull=True).update(ended_at=now, end_reason="revoked")
    entries = [
        AuditEntry(
            GRANT_REVOKE, "governance.grant", str(grant.pk), str(grant), before, grant.snapshot(), reason.strip()
        )
    ]
    pending = list(AccessRequest.objects.filter(reapproval_of=grant, state=RequestState.PENDING))
    if pending:
        AccessRequest.objects.filter(pk__in=[r.pk for r in pending]).update(
            state=RequestState.WITHDRAWN, decided_at=now, decision_reason="the grant was revoked"
        )
        entries += [
            AuditEntry(REQUEST_WITHDRAW, "governance.accessrequest", str(r.pk), str(r), reason="the grant was revoked")
            for r in pending
        ]
        capture_requests([r.pk for r in pending], at=now)
    capture_grants([grant.pk], at=now)
    audit.record_many(actor=actor, entries=entries, at=now)
    announce_grant_change(GrantChange.REVOKED, [grant.pk])
    if grant.user is not None and grant.user_id != actor.pk:
        notifications.queue(
            [
                notifications.message(
                    to=[grant.user],
                    subject=f"[Steward] Your access to {grant.dataset} was revoked",
                    body=f"{actor.get_username()} revoked grant {grant.pk}: {reason.strip()}\n",
                )
            ]
        )
    return grant


def grants_reassess(levels: dict[UUID, str], *, now: datetime | None = None) -> tuple[list[UUID], list[UUID]]:
    """Suspend current grants whose dataset's level rose above their approved level; resume suspended ones whose
    dataset is back at or below it. ``levels`` maps dataset ids to their new effective level.

    Returns (suspended ids, resumed ids). Must run inside the transaction that changed the levels.
    """
    now = now or timezone.now()
    grants = list(
        Grant.objects.select_for_update(of=("self",))
        .select_related("user", "dataset")
        .filter(dataset_id__any_of=UUIDs(levels), revoked_at__isnull=True, valid_until__gt=now)
    )
    suspend = [g for g in grants if g.suspended_at is None and rank(levels[g.dataset_id]) > rank(g.approved_level)]
    resume = [g for g in grants if g.suspended_at is not None and rank(levels[g.dataset_id]) <= rank(g.approved_level)]
    if not suspend and not resume:
        return [], []
    entries: list[AuditEntry] = []
    for g in suspend:
        level = levels[g.dataset_id]
        g.suspended_at, g.state = now, GrantState.SUSPENDED
        entries.append(
            AuditEntry(
                GRANT_SUSPEND,
                "governance.grant",
                str(g.pk),
                str(g),
                before={"state": GrantState.ACTIVE, "level": g.approved_level},
                after={"state": GrantState.SUSPENDED, "level": level},
                reason=f"{g.dataset} is now {level}, above the {g.approved_level} this grant was approved for",
            )
        )
    for g in resume:
        g.suspended_at, g.state = None, GrantState.ACTIVE
        entries.append(
            AuditEntry(
                GRANT_RESUME,
                "governance.grant",
                str(g.pk),
                str(g),
                before={"state": GrantState.SUSPENDED},
                after={"state": GrantState.ACTIVE, "level": levels[g.dataset_id]},
                reason=f"{g.dataset} is back at {levels[g.dataset_id]}, within the approved {g.approved_level}",
            )
        )
    update_objects(Grant, [*suspend, *resume], ["suspended_at", "state"])
    GrantSuspension.objects.bulk_create(
        [GrantSuspension(grant=g, level=levels[g.dataset_id], started_at=now) for g in suspend]
    )
    if resume:
        GrantSuspension.objects.filter(grant__in=resume, ended_at__isnull=True).update(
            ended_at=now, end_reason="level back within the approved level"
        )
    capture_grants([g.pk for g in [*suspend, *resume]], at=now)
    audit.record_many(actor=None, entries=entries, at=now)
    announce_grant_change(GrantChange.SUSPENDED, [g.pk for g in suspend])
    announce_grant_change(GrantChange.RESUMED, [g.pk for g in resume])
    notifications.queue(
        notifications.message(
            to=[g.user] if g.user else [],
            subject=f"[Steward] Your access to {g.dataset} is suspended",
            body=(
                f"{g.dataset} is now classified {levels[g.dataset_id]}; grant {g.pk} was approved for "
                f"{g.approved_level} and is suspended. Ask for its re-approval on your access page: "
                f"{notifications.link('/access/')}\n"
            ),
        )
        for g in suspend
    )
    return [g.pk for g in suspend], [g.pk for g in resume]


def on_reclassified(
    dataset_ids: Iterable[UUID], *, levels: dict[UUID, str] | None = None, now: datetime | None = None
) -> None:
    """The effective classification of these datasets changed: re-check grants and escalate pending requests.
    ``levels``: their new levels when the caller knows them (else read)."""
    ids = list(dataset_ids)
    if levels is None:
        levels = dict(Dataset.objects.filter(pk__any_of=UUIDs(ids)).values_list("pk", "effective_classification"))
    if not levels:
        return
    now = now or timezone.now()
    grants_reassess(levels, now=now)
    access_requests_escalate(levels, now=now)


def grants_expire(*, now: datetime | None = None, limit: int = 5000) -> int:
    """Mark grants whose window has ended as expired and announce them (the periodic task). Idempotent.

    Only display state and the ``grant_changed`` hook depend on this; decisions compare times.
    """
    now = now or timezone.now()
    with transaction.atomic():
        due = list(
            Grant.objects.select_for_update(of=("self",))
            .filter(state__in=[GrantState.ACTIVE, GrantState.SUSPENDED], valid_until__lte=now)
            .order_by("valid_until")[:limit]
        )
        if not due:
            return 0
        ids = [g.pk for g in due]
        Grant.objects.filter(pk__in=ids).update(state=GrantState.EXPIRED)
        GrantSuspension.objects.filter(grant_id__in=ids, ended_at__isnull=True).update(
            ended_at=now, end_reason="expired"
        )
        capture_grants(ids, at=now)
        audit.record_many(
            actor=None,
            entries=[
                AuditEntry(
                    GRANT_EXPIRE,
                    "governance.grant",
                    str(g.pk),
                    str(g),
                    before={"state": g.state},
                    after={"state": GrantState.EXPIRED},
                    reason=f"window ended at {g.valid_until.isoformat()}",
                )
                for g in due
            ],
            at=now,
        )
        announce_grant_change(GrantChange.EXPIRED, ids)
    return len(due)
