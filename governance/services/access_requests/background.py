"""What happens to requests without a person acting: expiry, and escalation when a dataset is reclassified."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from catalog.models import Dataset
from governance.actions import REQUEST_DENY, REQUEST_ESCALATE, REQUEST_EXPIRE
from governance.choices import RequestState
from governance.history_kinds import capture_requests
from governance.models import AccessRequest, AccessRequestItem, ApprovalSlot
from governance.policy import level_rules
from governance.selectors import policy_current
from governance.services.access_requests.checks import rank
from governance.services.access_requests.common import add_slots, close_request, notify_approvers, notify_requester
from ledger import audit
from ledger.audit import AuditEntry
from steward.lookups import UUIDs

__all__ = ["access_requests_escalate", "access_requests_expire", "escalate"]


def access_requests_expire(*, now: datetime | None = None, limit: int = 1000) -> int:
    """Expire pending requests past their deadline (the periodic task); returns how many. Idempotent."""
    now = now or timezone.now()
    with transaction.atomic():
        due = list(
            AccessRequest.objects.select_for_update(of=("self",))
            .select_related("requester")
            .filter(state=RequestState.PENDING, expires_at__lte=now)
            .order_by("expires_at")[:limit]
        )
        if not due:
            return 0
        AccessRequest.objects.filter(pk__in=[r.pk for r in due]).update(state=RequestState.EXPIRED, decided_at=now)
        capture_requests([r.pk for r in due], at=now)
        audit.record_many(
            actor=None,
            entries=[
                AuditEntry(
                    REQUEST_EXPIRE,
                    "governance.accessrequest",
                    str(r.pk),
                    str(r),
                    before={"state": RequestState.PENDING},
                    after={"state": RequestState.EXPIRED},
                    reason=f"no decision before {r.expires_at.isoformat()}",
                )
                for r in due
            ],
            at=now,
        )
        for r in due:
            notify_requester(
                r,
                f"Access request {str(r.pk)[:8]} expired",
                f"Your request ({r.purpose}) got no decision before {r.expires_at:%Y-%m-%d %H:%M} UTC and expired.",
            )
    return len(due)


def escalate(request: AccessRequest, risen: dict[UUID, str], *, now: datetime) -> list[ApprovalSlot]:
    """Datasets of a pending request rose to a higher level: require what the new level requires.

    Approvals already given stand. If the purpose is not allowed at the new level, the system denies the request.
    Returns the approval slots added. The caller records the request's history (once per batch).
    """
    policy = policy_current()
    rules = level_rules(policy)
    AccessRequestItem.objects.bulk_update(
        [
            AccessRequestItem(pk=pk, level=risen[ds])
            for pk, ds in request.items.filter(dataset_id__in=risen).values_list("pk", "dataset_id")
        ],
        ["level"],
    )
    names = dict(Dataset.objects.filter(pk__in=risen).values_list("pk", "name"))
    for ds_id, level in risen.items():
        rule = rules.get(level)
        if rule is None or request.purpose not in rule.purposes:
            reason = f"{names.get(ds_id, ds_id)} is now {level}, where {request.purpose!r} is not an allowed purpose."
            close_request(request, RequestState.DENIED, actor=None, reason=reason, now=now, action=REQUEST_DENY)
            notify_requester(request, f"Access request {str(request.pk)[:8]} denied", reason)
            return []
    added = add_slots(request, dict(risen), rules, existing=request.slots.all())
    audit.record(
        actor=None,
        action=REQUEST_ESCALATE,
        target=request,
        after={
            "levels": {str(k): v for k, v in risen.items()},
            "approvals_added": [{"role": s.role, "dataset": str(s.dataset_id or "")} for s in added],
        },
        at=now,
    )
    notify_approvers(request, added, why="A requested dataset's classification rose; your approval is now needed.")
    return added


def access_requests_escalate(levels: dict[UUID, str], *, now: datetime | None = None) -> int:
    """Escalate pending requests naming these datasets whose level rose above what their approvals assumed."""
    now = now or timezone.now()
    items = list(
        AccessRequestItem.objects.filter(
            dataset_id__any_of=UUIDs(levels), request__state=RequestState.PENDING
        ).values_list("request_id", "dataset_id", "level")
    )
    by_request: dict[UUID, dict[UUID, str]] = {}
    for request_id, ds_id, level in items:
        if rank(levels[ds_id]) > rank(level):
            by_request.setdefault(request_id, {})[ds_id] = levels[ds_id]
    for request in (
        AccessRequest.objects.select_for_update(of=("self",)).select_related("requester").filter(pk__in=by_request)
    ):
        escalate(request, by_request[request.pk], now=now)
    capture_requests(by_request, at=now)
    return len(by_request)
