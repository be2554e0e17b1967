"""DRF authentication with personal API tokens: ``Authorization: Bearer stw_...``.

A scoped token (``ApiToken.scopes``) may call only the views that declare one of its scopes in
``token_scope``; anything else is a 403 naming the token's scopes, checked here (whatever permission classes
the view has) and again by ``TokenScopePermission``.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from accounts.actions import TOKEN_SCOPE_REFUSED
from accounts.services import TOKEN_PREFIX, token_authenticate
from ledger import audit


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """Bearer tokens that start with ``stw_``; other bearer tokens are left to OIDC."""

    keyword = "Bearer"

    def authenticate(self, request: Any) -> tuple[Any, Any] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        parts = header.split()
        if len(parts) != 2 or parts[0].lower() not in ("bearer", "token"):
            return None
        if not parts[1].startswith(TOKEN_PREFIX):
            return None
        token = token_authenticate(parts[1])
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked API token.")
        context = getattr(request, "parser_context", None) or {}
        refusal = scope_refusal(token.scope_set, context.get("view"))
        if refusal:
            _audit_scope_refusal(token, request, refusal)
            raise exceptions.PermissionDenied(refusal)
        return token.user, token

    def authenticate_header(self, request: Any) -> str:
        return 'Bearer realm="steward"'


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "description": "Personal API token (stw_...)."}


def scope_refusal(scopes: frozenset[str], view: Any) -> str | None:
    """Why a token with these scopes may not call ``view`` (``None``: it may). Unscoped tokens may call any view."""
    if not scopes:
        return None
    wanted = getattr(view, "token_scope", None)
    if wanted and wanted in scopes:
        return None
    return (
        f"This API token is limited to {', '.join(sorted(scopes))} and may do nothing else; "
        "use a personal (unscoped) token or sign in."
    )


def _audit_scope_refusal(token: Any, request: Any, refusal: str) -> None:
    with transaction.atomic():
        audit.record(
            actor=token.user,
            action=TOKEN_SCOPE_REFUSED,
            target=token,
            after={"method": request.method, "path": request.path, "scopes": sorted(token.scope_set)},
            reason=refusal,
        )


class TokenScopePermission(permissions.BasePermission):
    """Second line: a scoped token reaches only views whose ``token_scope`` it holds (see ``scope_refusal``)."""

    message = "This API token is scoped and may not call this endpoint."

    def has_permission(self, request: Any, view: Any) -> bool:
        token = getattr(request, "auth", None)
        scopes: frozenset[str] = getattr(token, "scope_set", frozenset())
        refusal = scope_refusal(scopes, view)
        if refusal:
            self.message = refusal
            return False
        return True
