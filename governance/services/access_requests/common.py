"""Shared steps of the request services: approval slots, locking, closing, notifications."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from uuid import UUID

from django.contrib.auth import get_user_model

from governance import notifications
from governance.approvals import approver_ids, dataset_owner_ids
from governance.choices import ApproverRole, RequestState
from governance.models import AccessRequest, ApprovalSlot
from governance.policy import LevelRule
from ledger import audit
from steward.durations import format_duration
from steward.errors import Conflict, PermissionDenied
from steward.identity import Actor, authenticated_user, user_or_none

__all__ = [
    "SelfApproval",
    "add_slots",
    "check_open",
    "close_request",
    "describe_slots",
    "lock_request",
    "lock_subject",
    "notify_approvers",
    "notify_requester",
]


class SelfApproval(PermissionDenied):
    """Someone tried to decide their own request (403 ``self_approval``)."""

    code = "self_approval"


def add_slots(
    request: AccessRequest, levels: dict[UUID, str], rules: dict[str, LevelRule], *, existing: Iterable[ApprovalSlot]
) -> list[ApprovalSlot]:
    """Create the approval slots the datasets' levels require that the request does not have yet.
    The caller records the request's history (``capture_requests``)."""
    have = {(s.role, s.dataset_id) for s in existing}
    owners = dataset_owner_ids(levels)
    new: list[ApprovalSlot] = []
    for ds_id, level in levels.items():
        for role in rules[level].approvers:
            key = (role, ds_id if role == ApproverRole.OWNER else None)
            if key in have:
                continue
            have.add(key)
            fallback = role == ApproverRole.OWNER and not (owners.get(ds_id, set()) - {request.requester_id})
            new.append(ApprovalSlot(request=request, role=role, dataset_id=key[1], owner_fallback=fallback))
    ApprovalSlot.objects.bulk_create(new)
    return new


def describe_slots(slots: Iterable[ApprovalSlot], names: dict[UUID, str] | None = None) -> str:
    parts = []
    for s in slots:
        if s.role == ApproverRole.OWNER:
            what = names.get(s.dataset_id, str(s.dataset_id)) if names and s.dataset_id else str(s.dataset_id)
            parts.append(
                f"an owner of {what}" + (" (or a data steward: it has no other owner)" if s.owner_fallback else "")
            )
        else:
            parts.append(f"a {ApproverRole(s.role).label.lower()}")
    return "; ".join(parts)


def notify_approvers(request: AccessRequest, slots: list[ApprovalSlot], *, why: str) -> None:
    if not slots:
        return
    ids = approver_ids(slots, requester_id=request.requester_id)
    items = list(request.items.select_related("dataset"))
    names = {i.dataset_id: str(i.dataset) for i in items}
    body = (
        f"{request.requester.get_username()} asks to read, for {request.purpose} during "
        f"{format_duration(request.duration)}:\n"
        + "".join(f"  - {i.dataset} ({i.level})\n" for i in items)
        + f"\nJustification: {request.justification}\n\n{why}\nApprovals needed: {describe_slots(slots, names)}.\n"
        f"Review it: {notifications.link(f'/access/requests/{request.pk}/')}\n"
        f"Your queue: {notifications.link('/approvals/')}\n"
    )
    notifications.queue(
        [
            notifications.message(
                to=notifications.users_by_id(ids),
                subject=f"[Steward] Access request {str(request.pk)[:8]} awaits your approval",
                body=body,
            )
        ]
    )


def notify_requester(request: AccessRequest, subject: str, body: str) -> None:
    notifications.queue(
        [
            notifications.message(
                to=[request.requester],
                subject=f"[Steward] {subject}",
                body=body + f"\n{notifications.link(f'/access/requests/{request.pk}/')}\n",
            )
        ]
    )


def lock_subject(actor: Actor) -> None:
    """Serialise one user's request writes, so two concurrent requests cannot both pass the overlap check."""
    get_user_model().objects.select_for_update().filter(pk=authenticated_user(actor).pk).first()


def lock_request(request: AccessRequest) -> AccessRequest:
    return AccessRequest.objects.select_for_update(of=("self",)).select_related("requester").get(pk=request.pk)


def check_open(request: AccessRequest, now: datetime) -> None:
    if request.state != RequestState.PENDING:
        raise Conflict(f"This request is already {request.state}.")
    if now >= request.expires_at:
        raise Conflict(f"This request expired at {request.expires_at.isoformat()} without a decision.")


def close_request(
    request: AccessRequest, state: str, *, actor: Actor | None, reason: str, now: datetime, action: str
) -> None:
    """Decide a pending request (deny, withdraw) and audit it. The caller records its history
    (``capture_requests``), once per batch on bulk paths."""
    before = request.snapshot()
    request.state = state
    request.decided_at = now
    request.decided_by = user_or_none(actor)
    request.decision_reason = reason
    request.save(update_fields=["state", "decided_at", "decided_by", "decision_reason"])
    audit.record(
        actor=actor, action=action, target=request, before=before, after=request.snapshot(), reason=reason, at=now
    )
