"""Who may fill which approval slot: the rules shared by the services, the queue and the notifications.

- A slot of role ``privacy-officer`` or ``data-steward`` is filled by a holder of that role.
- An ``owner`` slot is filled by an owner of its dataset (an owner user, or a member of an owner group);
  when the dataset has no owner besides the requester (``owner_fallback``), a data steward fills it.
- Nobody fills a slot of their own request, and a person approves a request once, in one role.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Exists, OuterRef, Q

from catalog.models import Dataset
from governance.choices import ApproverRole
from governance.models import ApprovalSlot
from steward.identity import Role, roles_of

__all__ = ["approver_ids", "can_fill", "dataset_owner_ids", "fillable_slot_q", "group_ids_of"]

_ROLE_SLOTS = (ApproverRole.PRIVACY_OFFICER, ApproverRole.DATA_STEWARD)


def dataset_owner_ids(dataset_ids: Iterable[UUID]) -> dict[UUID, set[int]]:
    """Active users owning each dataset: owner users and members of owner groups (three queries)."""
    ids = list(set(dataset_ids))
    owners: dict[UUID, set[int]] = defaultdict(set)
    if not ids:
        return owners
    for ds, user in Dataset.owner_users.through.objects.filter(dataset_id__in=ids, user__is_active=True).values_list(
        "dataset_id", "user_id"
    ):
        owners[ds].add(user)
    group_rows = list(
        Dataset.owner_groups.through.objects.filter(dataset_id__in=ids).values_list("dataset_id", "group_id")
    )
    if group_rows:
        members: dict[int, set[int]] = defaultdict(set)
        membership = get_user_model().groups.through.objects.filter(
            group_id__in={g for _, g in group_rows}, user__is_active=True
        )
        for group, user in membership.values_list("group_id", "user_id"):
            members[group].add(user)
        for ds, group in group_rows:
            owners[ds] |= members[group]
    return owners


def can_fill(*, user_id: int | None, roles: frozenset[str], slot: ApprovalSlot, owners: dict[UUID, set[int]]) -> bool:
    """Whether this user may fill this slot (requester and one-approval-per-person checks are the caller's)."""
    if slot.role == ApproverRole.OWNER:
        return (slot.dataset_id is not None and user_id in owners.get(slot.dataset_id, ())) or (
            slot.owner_fallback and Role.DATA_STEWARD in roles
        )
    return slot.role in roles


def group_ids_of(user: Any) -> list[int]:
    return list(user.groups.values_list("pk", flat=True))


def fillable_slot_q(user: Any) -> Q:
    """``ApprovalSlot`` rows this user could fill by role or ownership (fill state not included)."""
    roles = roles_of(user)
    q = Q(role__in=[r for r in _ROLE_SLOTS if r in roles])
    own_user = Dataset.owner_users.through.objects.filter(dataset_id=OuterRef("dataset_id"), user_id=user.pk)
    # The user's groups as a subquery, not a list read first: one statement (the nav badge runs this on every page).
    own_group = Dataset.owner_groups.through.objects.filter(
        dataset_id=OuterRef("dataset_id"), group_id__in=user.groups.values("pk")
    )
    q |= Q(role=ApproverRole.OWNER) & (Exists(own_user) | Exists(own_group))
    if Role.DATA_STEWARD in roles:
        q |= Q(role=ApproverRole.OWNER, owner_fallback=True)
    return q


def approver_ids(slots: Iterable[ApprovalSlot], *, requester_id: int) -> set[int]:
    """Everyone who could fill one of these slots (to notify them), without the requester."""
    slots = list(slots)
    owners = dataset_owner_ids(s.dataset_id for s in slots if s.role == ApproverRole.OWNER and s.dataset_id)
    roles_needed = {s.role for s in slots if s.role != ApproverRole.OWNER}
    if any(s.role == ApproverRole.OWNER and s.owner_fallback for s in slots):
        roles_needed.add(ApproverRole.DATA_STEWARD)
    ids: set[int] = set()
    for s in slots:
        if s.role == ApproverRole.OWNER and s.dataset_id is not None:
            ids |= owners.get(s.dataset_id, set())
    if roles_needed:
        groups = Group.objects.filter(name__in=roles_needed)
        ids |= set(
            get_user_model().objects.filter(groups__in=groups, is_active=True).values_list("pk", flat=True).distinct()
        )
    ids.discard(requester_id)
    return ids
