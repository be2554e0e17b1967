"""Who may send lineage, end a job's lineage, and request or decide declassifications."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission

from steward.identity import Role, has_role

__all__ = [
    "CanProduceLineage",
    "can_decide_declassification",
    "can_emit_lineage",
    "can_manage_lineage",
    "can_request_declassification",
]


def can_emit_lineage(user: Any) -> bool:
    """Producers: the ``lineage-producer`` role (pipelines' service accounts), admins, or an API token scoped to
    ``lineage:write``. Lineage decides classification, so other people may not send it (issue 17)."""
    scopes = getattr(user, "_steward_token_scopes", None)
    if scopes:
        return "lineage:write" in scopes
    return has_role(user, Role.LINEAGE_PRODUCER, Role.ADMIN)


class CanProduceLineage(BasePermission):
    """DRF permission for the ingestion endpoints: 403 naming what is missing (the service checks again and
    audits the refusal)."""

    message = (
        "Sending lineage needs the lineage-producer role (or an API token with the lineage:write scope); "
        "ask an admin to make you, or your pipeline's service account, a producer."
    )

    def has_permission(self, request: Any, view: Any) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False
        if can_emit_lineage(request.user):
            return True
        from lineage.services.producers import lineage_right_check

        lineage_right_check(request.user)  # audits, then raises the 403
        return False


def can_manage_lineage(user: Any) -> bool:
    return has_role(user, Role.DATA_STEWARD, Role.ADMIN)


def can_request_declassification(user: Any) -> bool:
    return has_role(user, Role.DATA_OWNER, Role.DATA_STEWARD, Role.PRIVACY_OFFICER, Role.ADMIN)


def can_decide_declassification(user: Any) -> bool:
    """A data steward decides (never on their own request; the service checks that)."""
    return has_role(user, Role.DATA_STEWARD)
