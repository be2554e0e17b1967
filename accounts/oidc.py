"""OIDC login: the user named by the token's claims, with Steward roles from the configured claim.

Roles come from the claim named by ``STEWARD_OIDC_ROLES_CLAIM`` on every login.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import transaction

from steward.identity import Role

__all__ = ["StewardOIDCBackend"]


def _sync_roles(user: Any, claims: dict[str, Any]) -> None:
    raw = claims.get(settings.STEWARD_OIDC_ROLES_CLAIM) or []
    if isinstance(raw, str):
        raw = [raw]
    wanted = {str(v).strip("/").split("/")[-1] for v in raw}
    with transaction.atomic():
        groups = [Group.objects.get_or_create(name=name)[0] for name in wanted if name in Role.values]
        user.groups.remove(*user.groups.filter(name__in=Role.values).exclude(name__in=wanted))
        user.groups.add(*groups)


def _oidc_backend_base() -> type:
    from mozilla_django_oidc.auth import OIDCAuthenticationBackend

    return OIDCAuthenticationBackend


class StewardOIDCBackend(_oidc_backend_base()):  # type: ignore[misc]
    """OIDC login: username from ``preferred_username``, roles from the configured claim."""

    def filter_users_by_claims(self, claims: dict[str, Any]) -> Any:
        username = claims.get("preferred_username") or claims.get("sub")
        return self.UserModel.objects.filter(username=username)

    def create_user(self, claims: dict[str, Any]) -> Any:
        username = claims.get("preferred_username") or claims.get("sub")
        user = self.UserModel.objects.create_user(
            username=username,
            email=claims.get("email", ""),
            first_name=claims.get("given_name", ""),
            last_name=claims.get("family_name", ""),
        )
        _sync_roles(user, claims)
        return user

    def update_user(self, user: Any, claims: dict[str, Any]) -> Any:
        user.email = claims.get("email", user.email)
        user.save(update_fields=["email"])
        _sync_roles(user, claims)
        return user
