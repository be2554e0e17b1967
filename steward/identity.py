"""Who is asking: roles (Django groups) and the principals a viewer acts as.

Roles are groups named by ``Role`` values (OIDC users get theirs from ``accounts.oidc`` on every login).
Defines no model and imports no Steward app, so every layer may ask who is asking.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeAlias

from django.contrib.auth.models import AnonymousUser, User
from django.db import models

from steward.errors import PermissionDenied

__all__ = [
    "Actor",
    "DECISION_CALLERS",
    "PRIVILEGED_READERS",
    "Role",
    "Viewer",
    "authenticated_user",
    "has_role",
    "roles_of",
    "seed_roles",
    "user_or_none",
    "viewer_for",
]


# Who performs a service call: the request's user (``request.user``), a token's user, or a command's system user.
# Services that write require an authenticated one (they check); readers may be anonymous.
Actor: TypeAlias = User | AnonymousUser


def user_or_none(actor: Actor | None) -> User | None:
    """The user to store as who did something: ``None`` for the system (no actor) or an anonymous caller."""
    return actor if isinstance(actor, User) and actor.pk is not None else None


def authenticated_user(actor: Actor) -> User:
    """The authenticated user behind ``actor``, for rows that must name one (services check permissions first)."""
    if not isinstance(actor, User) or actor.pk is None:
        raise PermissionDenied("Authentication required.")
    return actor


class Role(models.TextChoices):
    DATA_SCIENTIST = "data-scientist", "Data scientist"
    DATA_OWNER = "data-owner", "Data owner"
    DATA_STEWARD = "data-steward", "Data steward"
    PRIVACY_OFFICER = "privacy-officer", "Privacy officer"
    COMPLIANCE_OFFICER = "compliance-officer", "Compliance officer"
    ADMIN = "admin", "Administrator"
    SERVICE = "service", "Service account"
    LINEAGE_PRODUCER = "lineage-producer", "Lineage producer"


# Roles that may ask the decision API about any subject (data-plane proxies hold ``service``).
DECISION_CALLERS = frozenset({Role.SERVICE, Role.ADMIN, Role.COMPLIANCE_OFFICER})


# Roles that may read every asset's metadata, whatever its classification.
PRIVILEGED_READERS = frozenset({Role.DATA_STEWARD, Role.PRIVACY_OFFICER, Role.COMPLIANCE_OFFICER, Role.ADMIN})


def roles_of(user: Actor | None) -> frozenset[str]:
    """The user's Steward roles; cached on the user object for the request."""
    if user is None or not user.is_authenticated:
        return frozenset()
    cached = getattr(user, "_steward_roles", None)
    if cached is not None:
        return cached
    return seed_roles(user, user.groups.values_list("name", flat=True))


def seed_roles(user: Any, group_names: Iterable[str]) -> frozenset[str]:
    """Cache the user's roles from their group names (all of them, already loaded, e.g. with the user by token
    auth); the names are kept too, for ``viewer_for``'s principals, and are as fresh as the roles."""
    groups = frozenset(group_names)
    user._steward_groups = groups
    names = {name for name in groups if name in Role.values}
    names.add(Role.DATA_SCIENTIST)
    if user.is_superuser:
        names.add(Role.ADMIN)
    roles = frozenset(names)
    user._steward_roles = roles
    return roles


def has_role(user: Actor | None, *roles: str) -> bool:
    return bool(roles_of(user) & set(roles))


@dataclass(frozen=True)
class Viewer:
    """What a reader is, for visibility checks: a user id, principals (``user:x``, ``group:y``), roles."""

    user_id: int | None
    principals: frozenset[str]
    roles: frozenset[str]

    @property
    def sees_all(self) -> bool:
        return bool(self.roles & PRIVILEGED_READERS)


def viewer_for(user: Any) -> Viewer:
    """Build the ``Viewer`` for a Django user (cached on the user object)."""
    cached = getattr(user, "_steward_viewer", None)
    if cached is not None:
        return cached
    if user is None or not user.is_authenticated:
        return Viewer(None, frozenset(), frozenset())
    # The roles and the group names they came from (token auth loads both with the user: no query here).
    roles = getattr(user, "_steward_roles", None)
    groups = getattr(user, "_steward_groups", None)
    if roles is None or groups is None:
        groups = frozenset(user.groups.values_list("name", flat=True))
        roles = seed_roles(user, groups)  # the roles from the same group names
    principals = frozenset({f"user:{user.username}", *(f"group:{g}" for g in groups)})
    viewer = Viewer(user.pk, principals, roles)
    user._steward_viewer = viewer
    return viewer
