"""Access at training time: the decision for the training user on each input, and every grant they held by then."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from uuid import UUID

from django.contrib.auth import get_user_model
from django.utils import timezone

from compliance.reconstruction.resolve import iso
from compliance.reconstruction.types import AccessSection, GrantView
from governance.authorization import DecisionQuery, decide_many
from governance.history_kinds import ACCESS_REQUEST, GRANT
from governance.models import Grant
from governance.selectors import grants_valid_at
from ledger import history

__all__ = ["access"]


def access(user_name: str | None, dataset_ids: list[str], at: datetime) -> tuple[dict[str, AccessSection], list[Grant]]:
    """For each input, the decision for the training user at ``at`` and every grant they held on it by then;
    and those grants (``changes_since`` says which were revoked or suspended later)."""
    user = get_user_model().objects.filter(username=user_name).first() if user_name else None
    if user is None:
        return {d: {"allowed": False, "reason": "unknown_subject", "grants": []} for d in dataset_ids}, []
    decisions = decide_many(
        [DecisionQuery(user_id=user.pk, dataset_id=UUID(d), at=at) for d in dataset_ids], now=timezone.now()
    )
    grants = list(
        Grant.objects.filter(user=user, dataset_id__in=dataset_ids, created_at__lte=at).order_by("valid_from")
    )
    # Validity at ``at`` by the one rule decisions and the data plane use (window, revocation, suspension periods).
    valid = set(
        grants_valid_at(at=at, user_id=user.pk, dataset_ids=[UUID(d) for d in dataset_ids]).values_list("pk", flat=True)
    )
    states = history.as_of_each(
        [*((GRANT, g.pk, at) for g in grants), *((ACCESS_REQUEST, g.request_id, at) for g in grants if g.request_id)]
    )
    by_dataset: dict[str, list[GrantView]] = defaultdict(list)
    for g in grants:
        revoked = g.revoked_at is not None and g.revoked_at <= at
        in_window = g.valid_from <= at < g.valid_until
        by_dataset[str(g.dataset_id)].append(
            {
                "id": str(g.pk),
                "valid_from": iso(g.valid_from),
                "valid_until": iso(g.valid_until),
                "approved_level": g.approved_level,
                "policy_version": g.policy_version_id,
                "valid_at_training": g.pk in valid,
                "revoked_by_then": revoked,
                "suspended_then": in_window and not revoked and g.pk not in valid,
                "state_then": states.get((GRANT, str(g.pk), at)),
                "request": (
                    {"id": str(g.request_id), "state_then": states.get((ACCESS_REQUEST, str(g.request_id), at))}
                    if g.request_id
                    else None
                ),
            }
        )
    sections: dict[str, AccessSection] = {
        d: {
            "allowed": decision.allowed,
            "reason": decision.reason,
            "grant": str(decision.grant_id) if decision.grant_id else None,
            "grants": by_dataset.get(d, []),
        }
        for d, decision in zip(dataset_ids, decisions, strict=True)
    }
    return sections, grants
