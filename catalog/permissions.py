"""Who may change what in the catalog. Reads are governed by ``catalog.selectors`` (visibility)."""

from __future__ import annotations

from typing import Any

from steward.identity import Role, has_role, viewer_for

__all__ = ["can_create_assets", "can_curate_tags", "can_edit_asset", "can_tag_asset", "has_curator_role", "is_owner"]

CURATORS = (Role.DATA_STEWARD, Role.ADMIN)


def is_owner(user: Any, asset: Any) -> bool:
    """True when ``user`` is one of the asset's owner users or in one of its owner groups."""
    if user is None or not user.is_authenticated:
        return False
    viewer = viewer_for(user)
    groups = {p.split(":", 1)[1] for p in viewer.principals if p.startswith("group:")}
    if asset.owner_users.filter(pk=user.pk).exists():
        return True
    return bool(groups) and asset.owner_groups.filter(name__in=groups).exists()


def can_create_assets(user: Any) -> bool:
    """Data owners, stewards and admins register datasets (ingestion bots hold one of these roles)."""
    return has_role(user, Role.DATA_OWNER, *CURATORS)


def can_edit_asset(user: Any, asset: Any) -> bool:
    return has_role(user, *CURATORS) or is_owner(user, asset)


def can_tag_asset(user: Any, asset: Any) -> bool:
    """Owners, stewards, privacy officers and admins tag and classify."""
    return has_role(user, Role.PRIVACY_OFFICER, *CURATORS) or is_owner(user, asset)


def can_curate_tags(user: Any) -> bool:
    """The tag vocabulary belongs to stewards, privacy officers and admins."""
    return has_role(user, Role.PRIVACY_OFFICER, *CURATORS)


def has_curator_role(user: Any) -> bool:
    """Stewards and admins may change any asset."""
    return has_role(user, *CURATORS)
