"""What governance keeps in history (``ledger.history``): the state loaders of its kinds.

Kinds:
- ``governance.grant`` (key: grant id): who holds it, on what, in which window, under which request and policy
  version, and everything that ended or paused it (revocation, suspensions with the level that caused them);
- ``governance.access_request`` (key: request id): the request, its datasets and their levels, its state and
  decision, and every approval slot with who filled it and when;
- ``governance.policy`` (key: ``"current"``): the policy version in force and its document, so that
  ``as_of(POLICY, "current", t)`` names the version that applied at ``t``.

The services capture these kinds right after each write, inside the write's transaction, at the time the
service uses for the change. Rows deleted by a cascade (a dataset or a user deleted) are captured by the
receivers in ``governance.receivers``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db.models import Q

from governance.models import AccessRequest, AccessRequestItem, ApprovalSlot, Grant, GrantSuspension
from governance.selectors import policy_current
from ledger import history
from steward.lookups import UUIDs

__all__ = [
    "ACCESS_REQUEST",
    "GRANT",
    "POLICY",
    "POLICY_KEY",
    "capture_grants",
    "capture_policy",
    "capture_requests",
    "dependents_of_datasets",
    "dependents_of_user",
    "load_access_requests",
    "load_grants",
    "load_policy",
    "register",
]

GRANT = "governance.grant"
ACCESS_REQUEST = "governance.access_request"
POLICY = "governance.policy"
POLICY_KEY = "current"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _uuids(keys: Iterable[Any]) -> UUIDs:
    return UUIDs([UUID(str(k)) for k in keys])


# --- loaders --------------------------------------------------------------------------------------------------


def load_grants(keys: list[str]) -> dict[str, dict[str, Any]]:
    """Grants' states: subject, dataset, window, origin (request, policy version), revocation and suspensions."""
    ids = _uuids(keys)
    periods: dict[UUID, list[dict[str, Any]]] = defaultdict(list)
    for grant_id, level, started_at, ended_at, end_reason in (
        GrantSuspension.objects.filter(grant_id__any_of=ids)
        .order_by("grant_id", "started_at", "id")
        .values_list("grant_id", "level", "started_at", "ended_at", "end_reason")
    ):
        periods[grant_id].append(
            {"level": level, "started_at": _iso(started_at), "ended_at": _iso(ended_at), "end_reason": end_reason}
        )
    states: dict[str, dict[str, Any]] = {}
    for g in Grant.objects.filter(pk__any_of=ids).select_related("user", "revoked_by"):
        suspensions = periods.get(g.pk, [])
        current = next((p for p in reversed(suspensions) if p["ended_at"] is None), None)
        states[str(g.pk)] = {
            "user": g.user.get_username() if g.user else None,
            "user_id": g.user_id,
            "workspace_id": str(g.workspace_id) if g.workspace_id else None,
            "workspace_label": g.workspace_label,
            "dataset_id": str(g.dataset_id),
            "privilege": g.privilege,
            "approved_level": g.approved_level,
            "policy_version": g.policy_version_id,
            "request_id": str(g.request_id) if g.request_id else None,
            "created_at": _iso(g.created_at),
            "valid_from": _iso(g.valid_from),
            "valid_until": _iso(g.valid_until),
            "state": g.state,
            "revoked_at": _iso(g.revoked_at),
            "revoked_by": g.revoked_by.get_username() if g.revoked_by else None,
            "revoke_reason": g.revoke_reason,
            "suspended_at": _iso(g.suspended_at),
            "suspension_reason": (
                f"dataset reclassified {current['level']}, above the approved {g.approved_level}" if current else None
            ),
            "suspensions": suspensions,
        }
    return states


def load_access_requests(keys: list[str]) -> dict[str, dict[str, Any]]:
    """Requests' states: who asked what for which purpose, the decision, and each approval slot."""
    ids = _uuids(keys)
    items: dict[UUID, list[dict[str, Any]]] = defaultdict(list)
    for request_id, dataset_id, level in (
        AccessRequestItem.objects.filter(request_id__any_of=ids)
        .order_by("request_id", "dataset_id")
        .values_list("request_id", "dataset_id", "level")
    ):
        items[request_id].append({"dataset_id": str(dataset_id), "level": level})
    slots: dict[UUID, list[dict[str, Any]]] = defaultdict(list)
    for request_id, role, dataset_id, fallback, filled_by_id, filled_by_name, filled_at, comment in (
        ApprovalSlot.objects.filter(request_id__any_of=ids)
        .order_by("request_id", "id")
        .values_list(
            "request_id",
            "role",
            "dataset_id",
            "owner_fallback",
            "filled_by_id",
            "filled_by_name",
            "filled_at",
            "comment",
        )
    ):
        slots[request_id].append(
            {
                "role": role,
                "dataset_id": str(dataset_id) if dataset_id else None,
                "owner_fallback": fallback,
                "filled_by": filled_by_name or None,
                "filled_by_id": filled_by_id,
                "filled_at": _iso(filled_at),
                "comment": comment,
            }
        )
    states: dict[str, dict[str, Any]] = {}
    for r in AccessRequest.objects.filter(pk__any_of=ids).select_related("requester", "decided_by"):
        states[str(r.pk)] = {
            "requester": r.requester.get_username(),
            "requester_id": r.requester_id,
            "workspace_id": str(r.workspace_id) if r.workspace_id else None,
            "workspace_label": r.workspace_label,
            "items": items.get(r.pk, []),
            "purpose": r.purpose,
            "justification": r.justification,
            "duration_seconds": r.duration.total_seconds(),
            "state": r.state,
            "reapproval_of": str(r.reapproval_of_id) if r.reapproval_of_id else None,
            "policy_version": r.policy_version_id,
            "created_at": _iso(r.created_at),
            "expires_at": _iso(r.expires_at),
            "decided_at": _iso(r.decided_at),
            "decided_by": r.decided_by.get_username() if r.decided_by else None,
            "decision_reason": r.decision_reason,
            "slots": slots.get(r.pk, []),
        }
    return states


def load_policy(keys: list[str]) -> dict[str, dict[str, Any]]:
    """The policy in force (``"current"``): its version number, document and who published it.

    Version 0 is the built-in default that applies while no version is stored.
    """
    if POLICY_KEY not in keys:
        return {}
    current = policy_current()
    return {
        POLICY_KEY: {
            "version": current.version,
            "document": current.document(),
            "created_at": _iso(current.created_at) if current.version else None,
            "created_by": current.created_by_name or None,
            "note": current.note,
        }
    }


# --- capture helpers (call inside the transaction of the change) ----------------------------------------------


def capture_grants(ids: Iterable[Any], *, at: datetime | None = None) -> int:
    return history.capture(GRANT, ids, at=at)


def capture_requests(ids: Iterable[Any], *, at: datetime | None = None) -> int:
    return history.capture(ACCESS_REQUEST, ids, at=at)


def capture_policy(*, at: datetime | None = None) -> int:
    return history.capture(POLICY, [POLICY_KEY], at=at)


# --- what a cascade changes -----------------------------------------------------------------------------------


def dependents_of_datasets(dataset_ids: Iterable[Any]) -> dict[str, set[str]]:
    """Grants and requests that deleting these datasets deletes or changes (items, slots, re-approvals)."""
    ids = _uuids(dataset_ids)
    grants = {str(pk) for pk in Grant.objects.filter(dataset_id__any_of=ids).values_list("pk", flat=True)}
    requests = {
        str(pk)
        for pk in AccessRequest.objects.filter(
            Q(items__dataset_id__any_of=ids)
            | Q(slots__dataset_id__any_of=ids)
            | Q(reapproval_of__dataset_id__any_of=ids)
        )
        .values_list("pk", flat=True)
        .distinct()
    }
    return {GRANT: grants, ACCESS_REQUEST: requests}


def dependents_of_user(user_id: int) -> dict[str, set[str]]:
    """Grants and requests that deleting this user deletes or changes (held, revoked, asked, decided, approved)."""
    grant_q = Q(user_id=user_id) | Q(revoked_by_id=user_id) | Q(request__requester_id=user_id)
    grants = {str(pk) for pk in Grant.objects.filter(grant_q).values_list("pk", flat=True)}
    request_q = (
        Q(requester_id=user_id)
        | Q(decided_by_id=user_id)
        | Q(slots__filled_by_id=user_id)
        | Q(reapproval_of__user_id=user_id)
    )
    requests = {str(pk) for pk in AccessRequest.objects.filter(request_q).values_list("pk", flat=True).distinct()}
    return {GRANT: grants, ACCESS_REQUEST: requests}


def capture_dependents(keys: dict[str, set[str]], *, at: datetime | None = None) -> None:
    """Record the kinds' keys gathered by ``dependents_of_*`` once the cascade is done."""
    for kind, kind_keys in keys.items():
        history.capture(kind, kind_keys, at=at)


# --- registration ---------------------------------------------------------------------------------------------


def register() -> None:
    history.register(GRANT, load_grants, history.all_pks(Grant))
    history.register(ACCESS_REQUEST, load_access_requests, history.all_pks(AccessRequest))
    history.register(POLICY, load_policy, lambda: [POLICY_KEY])
