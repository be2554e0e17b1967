"""Deciding access requests: approve (the last approval creates the grants), deny, withdraw."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from catalog.models import Dataset
from governance.actions import (
    GRANT_CREATE,
    GRANT_REAPPROVE,
    REQUEST_APPROVE,
    REQUEST_APPROVED,
    REQUEST_DENY,
    REQUEST_WITHDRAW,
)
from governance.approvals import can_fill, dataset_owner_ids
from governance.choices import APPROVER_ORDER, ApproverRole, GrantChange, GrantState, RequestState
from governance.history_kinds import capture_grants, capture_requests
from governance.models import AccessRequest, ApprovalSlot, Grant, GrantSuspension, PolicyVersion
from governance.policy import LevelRule, level_rules
from governance.selectors import policy_current
from governance.services.access_requests.background import escalate
from governance.services.access_requests.checks import check_toxic, rank, subject_of
from governance.services.access_requests.common import (
    SelfApproval,
    check_open,
    close_request,
    describe_slots,
    lock_request,
    notify_requester,
)
from governance.signals import announce_grant_change
from ledger import audit
from ledger.audit import AuditEntry
from steward.errors import Conflict, PermissionDenied, ValidationFailed
from steward.identity import Actor, authenticated_user, roles_of, user_or_none

__all__ = ["access_request_approve", "access_request_deny", "access_request_withdraw", "finalize"]


@transaction.atomic
def access_request_approve(
    *, actor: Actor, request: AccessRequest, role: str | None = None, comment: str = "", now: datetime | None = None
) -> AccessRequest:
    """Give one approval. A person approves a request once, in one role: ``role`` when given, else the first
    they can fill of owner, privacy officer, data steward (as owner, it covers every dataset of the request they
    own). The last missing approval approves the request and creates its grants."""
    now = now or timezone.now()
    request = lock_request(request)
    check_open(request, now)
    if request.requester_id == actor.pk:
        raise SelfApproval("Nobody approves their own request.")
    if role is not None and role not in ApproverRole.values:
        raise ValidationFailed.one("role", f"Unknown role {role!r}; use one of {', '.join(ApproverRole.values)}.")
    slots = list(request.slots.all())
    mine_before = [s for s in slots if s.filled_by_id == actor.pk]
    if mine_before:
        raise Conflict(
            f"You already approved this request as {mine_before[0].role}; each further approval needs another person."
        )
    open_slots = [s for s in slots if s.filled_at is None]
    owners = dataset_owner_ids(s.dataset_id for s in open_slots if s.role == ApproverRole.OWNER and s.dataset_id)
    roles = roles_of(actor)
    fillable = [s for s in open_slots if can_fill(user_id=actor.pk, roles=roles, slot=s, owners=owners)]
    if role is not None:
        fillable = [s for s in fillable if s.role == role]
    if not fillable:
        names = dict(request.items.values_list("dataset_id", "dataset__name"))
        raise PermissionDenied(
            f"This request still needs {describe_slots(open_slots, names)}; "
            f"you cannot give any of these approvals{f' as {role}' if role else ''}."
        )
    chosen = next(r for r in APPROVER_ORDER if any(s.role == r for s in fillable))
    filled = [s for s in fillable if s.role == chosen]
    for s in filled:
        s.filled_by, s.filled_by_name, s.filled_at, s.comment = (
            authenticated_user(actor),
            actor.get_username(),
            now,
            comment or "",
        )
    ApprovalSlot.objects.bulk_update(filled, ["filled_by", "filled_by_name", "filled_at", "comment"])
    capture_requests([request.pk], at=now)
    audit.record(
        actor=actor,
        action=REQUEST_APPROVE,
        target=request,
        after={"role": chosen, "datasets": sorted(str(s.dataset_id) for s in filled if s.dataset_id)},
        reason=comment or "",
        at=now,
    )
    if len(filled) == len(open_slots):
        finalize(request, actor=actor, now=now)
    return request


def finalize(request: AccessRequest, *, actor: Actor | None, now: datetime) -> None:
    """All approvals are in: create the grants (or resume the grant being re-approved).

    If a dataset's level rose since the approvals were asked for (a missed reclassification), the request is
    escalated instead and stays pending.
    """
    items = list(request.items.all())
    levels = dict(
        Dataset.objects.filter(pk__in=[i.dataset_id for i in items]).values_list("pk", "effective_classification")
    )
    risen = {i.dataset_id: levels[i.dataset_id] for i in items if rank(levels[i.dataset_id]) > rank(i.level)}
    if risen:
        added = escalate(request, risen, now=now)
        capture_requests([request.pk], at=now)
        if request.state != RequestState.PENDING or added:
            return
    policy = policy_current()
    rules = level_rules(policy)
    subject = subject_of(request)
    datasets = list(Dataset.objects.filter(pk__in=levels))
    entries: list[AuditEntry] = []
    if request.reapproval_of_id:
        grant = _reapprove(request, levels, rules, policy, now=now, entries=entries)
        grant_ids = [grant.pk]
    else:
        check_toxic(policy, subject, datasets, now)
        grants = []
        for item in items:
            level = levels[item.dataset_id]
            rule = rules.get(level)
            length = min(request.duration, rule.max_duration) if rule else request.duration
            grants.append(
                Grant(
                    user_id=subject.user_id,
                    workspace_id=subject.workspace_id,
                    workspace_label=request.workspace_label,
                    dataset_id=item.dataset_id,
                    valid_from=now,
                    valid_until=now + length,
                    request=request,
                    approved_level=level,
                    policy_version=policy if policy.version else None,
                    created_at=now,
                )
            )
        Grant.objects.bulk_create(grants)
        grant_ids = [g.pk for g in grants]
        entries += [AuditEntry(GRANT_CREATE, "governance.grant", str(g.pk), str(g), after=g.snapshot()) for g in grants]
    request.state = RequestState.APPROVED
    request.decided_at = now
    request.decided_by = user_or_none(actor)
    request.save(update_fields=["state", "decided_at", "decided_by"])
    capture_grants(grant_ids, at=now)  # the new grants, or the re-approved one (``_reapprove``)
    capture_requests([request.pk], at=now)
    how = "auto-approved by policy" if actor is None else "approved"
    entries.insert(
        0,
        AuditEntry(
            REQUEST_APPROVED,
            "governance.accessrequest",
            str(request.pk),
            str(request),
            after={"state": request.state, "grants": [str(g) for g in grant_ids], "how": how},
        ),
    )
    audit.record_many(actor=actor, entries=entries, at=now)
    announce_grant_change(GrantChange.RESUMED if request.reapproval_of_id else GrantChange.CREATED, grant_ids)
    notify_requester(
        request,
        f"Access request {str(request.pk)[:8]} {how}",
        f"Your request ({request.purpose}) was {how}. "
        + (
            "The suspended grant is valid again." if request.reapproval_of_id else f"{len(grant_ids)} grant(s) created."
        ),
    )


def _reapprove(
    request: AccessRequest,
    levels: dict[UUID, str],
    rules: dict[str, LevelRule],
    policy: PolicyVersion,
    *,
    now: datetime,
    entries: list[AuditEntry],
) -> Grant:
    if request.reapproval_of_id is None:
        raise ValueError(f"Request {request.pk} re-approves no grant.")
    grant = Grant.objects.select_for_update(of=("self",)).get(pk=request.reapproval_of_id)
    if grant.revoked_at is not None or grant.valid_until <= now:
        raise Conflict(f"The grant was {grant.state_at(now)} while its re-approval was pending; file a new request.")
    before = grant.snapshot()
    level = levels[grant.dataset_id]
    rule = rules.get(level)
    grant.approved_level = level
    grant.policy_version = policy if policy.version else None
    if rule and grant.valid_until > now + rule.max_duration:
        grant.valid_until = now + rule.max_duration
    if grant.suspended_at is not None:
        GrantSuspension.objects.filter(grant=grant, ended_at__isnull=True).update(
            ended_at=now, end_reason="re-approved"
        )
        grant.suspended_at = None
        grant.state = GrantState.ACTIVE
    grant.save(update_fields=["approved_level", "policy_version", "valid_until", "suspended_at", "state"])
    entries.append(
        AuditEntry(
            GRANT_REAPPROVE,
            "governance.grant",
            str(grant.pk),
            str(grant),
            before=before,
            after=grant.snapshot(),
            reason=f"re-approved in request {request.pk}",
        )
    )
    return grant


@transaction.atomic
def access_request_deny(
    *, actor: Actor, request: AccessRequest, reason: str, now: datetime | None = None
) -> AccessRequest:
    """Deny a pending request: anyone who could give one of its missing approvals may, with a reason."""
    now = now or timezone.now()
    request = lock_request(request)
    check_open(request, now)
    if request.requester_id == actor.pk:
        raise SelfApproval("You cannot decide your own request; withdraw it instead.")
    if not (reason or "").strip():
        raise ValidationFailed.one("reason", "Say why the request is denied.", "required")
    open_slots = [s for s in request.slots.all() if s.filled_at is None]
    owners = dataset_owner_ids(s.dataset_id for s in open_slots if s.role == ApproverRole.OWNER and s.dataset_id)
    roles = roles_of(actor)
    if not any(can_fill(user_id=actor.pk, roles=roles, slot=s, owners=owners) for s in open_slots):
        raise PermissionDenied("Only someone who could give one of its missing approvals denies a request.")
    close_request(request, RequestState.DENIED, actor=actor, reason=reason.strip(), now=now, action=REQUEST_DENY)
    capture_requests([request.pk], at=now)
    notify_requester(
        request,
        f"Access request {str(request.pk)[:8]} denied",
        f"{actor.get_username()} denied your request ({request.purpose}): {reason.strip()}",
    )
    return request


@transaction.atomic
def access_request_withdraw(
    *, actor: Actor, request: AccessRequest, reason: str = "", now: datetime | None = None
) -> AccessRequest:
    """The requester withdraws their pending request."""
    now = now or timezone.now()
    request = lock_request(request)
    if request.requester_id != actor.pk:
        raise PermissionDenied("Only the requester withdraws a request.")
    check_open(request, now)
    close_request(
        request, RequestState.WITHDRAWN, actor=actor, reason=(reason or "").strip(), now=now, action=REQUEST_WITHDRAW
    )
    capture_requests([request.pk], at=now)
    return request
