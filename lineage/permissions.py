"""Who may send lineage, end a job's lineage, and request or decide declassifications."""

from __future__ import annotations

from typing import Any

from steward.identity import Role, has_role

__all__ = ["can_decide_declassification", "can_emit_lineage", "can_manage_lineage", "can_request_declassification"]


def can_emit_lineage(user: Any) -> bool:
    """People and pipelines that run jobs: data scientists, owners, stewards, admins. Everyone holds the data
    scientist role (ARCHITECTURE §5), so in practice any signed-in user or API token may send lineage."""
    return has_role(user, Role.DATA_SCIENTIST, Role.DATA_OWNER, Role.DATA_STEWARD, Role.ADMIN)


def can_manage_lineage(user: Any) -> bool:
    return has_role(user, Role.DATA_STEWARD, Role.ADMIN)


def can_request_declassification(user: Any) -> bool:
    return has_role(user, Role.DATA_OWNER, Role.DATA_STEWARD, Role.PRIVACY_OFFICER, Role.ADMIN)


def can_decide_declassification(user: Any) -> bool:
    """A data steward decides (never on their own request; the service checks that)."""
    return has_role(user, Role.DATA_STEWARD)
