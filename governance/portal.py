"""What the access pages show: a person's standing on a dataset, what the policy will ask of a request, who is
awaited, and time left. Read-only; the pages and the API write through ``governance.services``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from catalog.models import Dataset
from governance import selectors
from governance.approvals import group_ids_of
from governance.choices import ApproverRole, GrantState, RequestState
from governance.models import AccessRequest, ApprovalSlot, Grant
from governance.policy import level_rules
from steward.durations import format_duration
from steward.identity import has_role

__all__ = [
    "AccessStanding",
    "RequestPlan",
    "access_standing",
    "awaiting_count",
    "human_duration",
    "grants_on_my_datasets",
    "my_grants",
    "request_plan",
    "slot_label",
    "time_left",
]


def slot_label(slot: ApprovalSlot) -> str:
    """An approval slot as a person reads it: "owner of sales.orders", "privacy officer"."""
    if slot.role == ApproverRole.OWNER:
        name = slot.dataset.name if slot.dataset_id and slot.dataset else "the dataset"
        return f"a data steward (for {name}, which has no other owner)" if slot.owner_fallback else f"owner of {name}"
    return ApproverRole(slot.role).label.lower()


def time_left(until: datetime, now: datetime | None = None) -> str:
    """``3 d 4 h left``, ``25 min left``, or ``ended`` — the countdown's first rendering (the page ticks it)."""
    seconds = int((until - (now or timezone.now())).total_seconds())
    if seconds <= 0:
        return "ended"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = max(1, rest // 60) if not (days or hours) else rest // 60
    if days:
        return f"{days} d {hours} h left"
    if hours:
        return f"{hours} h {minutes} min left"
    return f"{minutes} min left"


def human_duration(value: timedelta) -> str:
    """``30 days``, ``8 hours``, ``1 day 12 hours`` (the ISO form follows in brackets)."""
    days, rest = divmod(int(value.total_seconds()), 86400)
    hours, rest = divmod(rest, 3600)
    parts = [f"{n} {unit}{'s' if n != 1 else ''}" for n, unit in ((days, "day"), (hours, "hour")) if n]
    if rest // 60 or not parts:
        parts.append(f"{rest // 60} min")
    return f"{' '.join(parts)} ({format_duration(value)})"


@dataclass
class AccessStanding:
    """A person's standing on one dataset: ``none``, ``requested``, ``granted`` or ``suspended``."""

    state: str
    grant: Grant | None = None
    request: AccessRequest | None = None
    awaiting: list[str] = field(default_factory=list)
    why: str = ""

    @property
    def time_left(self) -> str:
        return time_left(self.grant.valid_until) if self.grant else ""


def access_standing(*, user: Any, dataset: Dataset, now: datetime | None = None) -> AccessStanding:
    """What ``user`` holds on ``dataset`` now (their own grants and requests, not a workspace's)."""
    now = now or timezone.now()
    grant = (
        Grant.objects.filter(user=user, dataset=dataset, revoked_at__isnull=True, valid_until__gt=now)
        .prefetch_related("suspensions")
        .order_by("-valid_until")
        .first()
    )
    if grant is not None and grant.suspended_at is not None:
        open_period = [s for s in grant.suspensions.all() if s.ended_at is None]
        level = open_period[-1].level if open_period else dataset.effective_classification
        why = (
            f"{dataset.name} became {level} after this grant was approved at {grant.approved_level}; "
            "it needs re-approval under the new level."
        )
        return AccessStanding("suspended", grant=grant, why=why)
    if grant is not None and grant.valid_from <= now:
        return AccessStanding("granted", grant=grant)
    pending = (
        AccessRequest.objects.filter(
            requester=user,
            workspace_id__isnull=True,
            state=RequestState.PENDING,
            expires_at__gt=now,
            items__dataset=dataset,
        )
        .prefetch_related("slots__dataset")
        .first()
    )
    if pending is not None:
        return AccessStanding("requested", request=pending, awaiting=awaited(pending))
    return AccessStanding("none")


def awaited(request: AccessRequest) -> list[str]:
    """Who a request still waits for, as readable labels."""
    return [slot_label(s) for s in request.slots.all() if s.filled_at is None]


@dataclass
class RequestPlan:
    """What the policy asks of a request for these datasets, shown before it is filed."""

    datasets: list[Dataset]
    levels: dict[Any, str]
    purposes: list[tuple[str, str]]
    max_duration: timedelta | None
    approvers: list[str]
    problems: list[str]

    @property
    def max_duration_text(self) -> str:
        return human_duration(self.max_duration) if self.max_duration is not None else ""

    @property
    def auto_approved(self) -> bool:
        return not self.approvers and not self.problems


def request_plan(datasets: Iterable[Dataset]) -> RequestPlan:
    """Purposes allowed at every dataset's level, the shortest maximum duration, and the approvers each level
    asks for (per dataset for owners), from the policy in force."""
    datasets = list(datasets)
    policy = selectors.policy_current()
    rules = level_rules(policy)
    levels = {ds.pk: ds.effective_classification for ds in datasets}
    allowed: set[str] | None = None
    max_duration: timedelta | None = None
    approvers: list[str] = []
    problems: list[str] = []
    for ds in datasets:
        rule = rules.get(levels[ds.pk])
        if rule is None:
            problems.append(f"The policy has no rule for level {levels[ds.pk]} ({ds.name}).")
            continue
        allowed = set(rule.purposes) if allowed is None else allowed & rule.purposes
        max_duration = rule.max_duration if max_duration is None else min(max_duration, rule.max_duration)
        for role in rule.approvers:
            label = f"owner of {ds.name}" if role == ApproverRole.OWNER else ApproverRole(role).label.lower()
            if label not in approvers:
                approvers.append(label)
    purposes = [(key, policy.purposes.get(key, "")) for key in sorted(allowed or ())]
    if datasets and allowed is not None and not allowed:
        problems.append("No purpose is allowed for all of these datasets together; request them separately.")
    return RequestPlan(datasets, levels, purposes, max_duration, approvers, problems)


def awaiting_count(user: Any) -> int:
    """How many requests wait for this user's approval (the nav badge)."""
    if not getattr(user, "is_authenticated", False):
        return 0
    return AccessRequest.objects.filter(selectors.awaiting_q(user)).count()


def my_grants(*, user: Any) -> QuerySet[Grant]:
    """The user's own grants, current first."""
    return (
        Grant.objects.filter(user=user)
        .select_related("dataset", "request", "revoked_by")
        .order_by("revoked_at", "-valid_until")
    )


def grants_on_my_datasets(*, user: Any, include_ended: bool = False) -> QuerySet[Grant]:
    """Grants on datasets the user owns (all grants for roles that may revoke any): what a steward manages."""
    qs = selectors.grant_list(user=user).exclude(user=user)
    if not has_role(user, *selectors.READ_ALL_GRANTS):
        owned = Dataset.objects.filter(Q(owner_users=user) | Q(owner_groups__in=group_ids_of(user))).values("pk")
        qs = qs.filter(dataset_id__in=owned)
    if not include_ended:
        qs = qs.filter(revoked_at__isnull=True, valid_until__gt=timezone.now()).exclude(state=GrantState.EXPIRED)
    return qs.order_by("valid_until")
