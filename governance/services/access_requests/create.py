"""Creating access requests, and re-approval requests for suspended grants."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from catalog.models import Dataset
from catalog.services.popularity import popularity_record
from governance.actions import REQUEST_CREATE
from governance.history_kinds import capture_requests
from governance.models import AccessRequest, AccessRequestItem, Grant
from governance.policy import LevelRule, level_rules
from governance.selectors import policy_current
from governance.services.access_requests.checks import (
    DatasetRef,
    Subject,
    check_overlap,
    check_policy,
    check_toxic,
    resolve_datasets,
)
from governance.services.access_requests.common import add_slots, lock_subject, notify_approvers
from governance.services.access_requests.decide import finalize
from governance.subjects import may_act_for_workspace
from ledger import audit
from steward.errors import Conflict, PermissionDenied, ValidationFailed
from steward.identity import Actor, authenticated_user

__all__ = ["access_request_create", "grant_reapproval_request", "open_request"]


@transaction.atomic
def access_request_create(
    *,
    actor: Actor,
    datasets: Sequence[DatasetRef],
    purpose: str,
    justification: str,
    duration: timedelta,
    workspace_id: UUID | None = None,
    workspace_label: str = "",
    now: datetime | None = None,
) -> AccessRequest:
    """Ask to read ``datasets`` for ``purpose`` during ``duration`` (for oneself, or for a workspace).

    Datasets whose level the policy auto-approves need no approval; if none needs one, the request is approved
    at once and its grants exist when this returns. Otherwise the approvers are e-mailed.
    """
    if not getattr(actor, "is_authenticated", False):
        raise PermissionDenied("Log in to request access.")
    now = now or timezone.now()
    if not (justification or "").strip():
        raise ValidationFailed.one("justification", "Say why you need this data.", "required")
    if duration <= timedelta(0):
        raise ValidationFailed.one("duration", "The duration must be longer than zero.", "invalid_duration")
    if workspace_id is not None and not may_act_for_workspace(actor, workspace_id):
        raise PermissionDenied("Only the workspace's owner and admins ask for access on its behalf.")
    resolved = resolve_datasets(actor, datasets)
    policy = policy_current()
    rules = level_rules(policy)
    check_policy(policy, rules, resolved, purpose, duration)
    lock_subject(actor)
    subject = Subject(None, workspace_id) if workspace_id else Subject(actor.pk, None)
    check_overlap(subject, resolved, now)
    check_toxic(policy, subject, resolved, now)

    popularity_record(kind="dataset", ids=[d.pk for d in resolved], signal="request")
    request = AccessRequest.objects.create(
        requester=authenticated_user(actor),
        workspace_id=workspace_id,
        workspace_label=(workspace_label or "")[:200],
        purpose=purpose,
        justification=justification.strip(),
        duration=duration,
        policy_version=policy if policy.version else None,
        created_at=now,
        expires_at=now + timedelta(hours=settings.STEWARD_ACCESS_REQUEST_TTL_HOURS),
    )
    return open_request(request, resolved, rules, now=now, action=REQUEST_CREATE)


def open_request(
    request: AccessRequest, datasets: list[Dataset], rules: dict[str, LevelRule], *, now: datetime, action: str
) -> AccessRequest:
    levels = {ds.pk: ds.effective_classification for ds in datasets}
    AccessRequestItem.objects.bulk_create(
        [AccessRequestItem(request=request, dataset=ds, level=levels[ds.pk]) for ds in datasets]
    )
    slots = add_slots(request, levels, rules, existing=())
    capture_requests([request.pk], at=now)
    audit.record(
        actor=request.requester,
        action=action,
        target=request,
        after={
            **request.snapshot(),
            "datasets": [{"id": str(ds.pk), "name": str(ds), "level": levels[ds.pk]} for ds in datasets],
            "justification": request.justification,
            "approvals_needed": [{"role": s.role, "dataset": str(s.dataset_id or "")} for s in slots],
            "policy_version": request.policy_version_id,
        },
        at=now,
    )
    if slots:
        notify_approvers(request, slots, why="You are asked because of your role or your ownership of a dataset.")
    else:
        finalize(request, actor=None, now=now)
    return request


@transaction.atomic
def grant_reapproval_request(
    *, actor: Actor, grant: Grant, justification: str = "", now: datetime | None = None
) -> AccessRequest:
    """Ask for a suspended grant to be re-approved under its dataset's new level (by the grant's holder).

    Creates a request for the same dataset and purpose, needing the approvals the new level requires. When
    approved, the same grant resumes (its window unchanged, or shortened to the new level's maximum).
    """
    now = now or timezone.now()
    holder = grant.user_id if grant.user_id else (grant.request.requester_id if grant.request else None)
    if getattr(actor, "pk", None) != holder:
        raise PermissionDenied("Only the grant's holder asks for its re-approval.")
    grant = Grant.objects.select_for_update(of=("self",)).select_related("dataset", "request").get(pk=grant.pk)
    if grant.revoked_at is not None or grant.valid_until <= now:
        raise Conflict(f"This grant is {grant.state_at(now)}; file a new access request instead.")
    if grant.suspended_at is None:
        raise Conflict("This grant is not suspended; it needs no re-approval.")
    dataset = grant.dataset
    policy = policy_current()
    rules = level_rules(policy)
    purpose = grant.request.purpose if grant.request else ""
    remaining = grant.valid_until - now
    try:
        check_policy(policy, rules, [dataset], purpose, timedelta(0))
    except ValidationFailed as exc:
        raise Conflict(
            f"The grant cannot be re-approved at level {dataset.effective_classification}: {exc.message} "
            "Revoke it and file a new request.",
            problems=exc.problems,
        ) from None
    lock_subject(actor)
    subject = Subject(None, grant.workspace_id) if grant.workspace_id else Subject(grant.user_id, None)
    check_overlap(subject, [dataset], now, exclude_grant=grant.pk)
    request = AccessRequest.objects.create(
        requester=authenticated_user(actor),
        workspace_id=grant.workspace_id,
        workspace_label=grant.workspace_label,
        purpose=purpose,
        justification=(justification or "").strip()
        or f"Re-approval of grant {grant.pk} after {dataset} became {dataset.effective_classification}.",
        duration=remaining,
        reapproval_of=grant,
        policy_version=policy if policy.version else None,
        created_at=now,
        expires_at=min(now + timedelta(hours=settings.STEWARD_ACCESS_REQUEST_TTL_HOURS), grant.valid_until),
    )
    return open_request(request, [dataset], rules, now=now, action=REQUEST_CREATE)
