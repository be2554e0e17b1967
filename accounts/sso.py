"""Single sign-on with an OpenID Connect provider (Keycloak): roles from IdP groups, bearer access tokens
validated against the provider's JWKS, and logout that ends the provider's session too.

- ``sync_roles`` maps the groups claim to Steward roles on every login and every bearer call: a user removed
  from a group in the IdP loses that role the next time they sign in (or call the API with a new token).
- ``OIDCBearerAuthentication`` (DRF) accepts ``Authorization: Bearer <JWT>`` signed by a key of the provider's
  JWKS, unexpired, issued by ``OIDC_OP_ISSUER`` for ``STEWARD_OIDC_AUDIENCE``. Service accounts (client
  credentials) come in the same way; their groups (e.g. ``service``, ``lineage-producer``) give their roles.
- ``provider_logout_url`` sends the browser to the provider's ``end_session_endpoint`` with the ID token as hint.
"""

from __future__ import annotations

import logging
import threading
from typing import Any
from urllib.parse import urlencode

import jwt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.shortcuts import resolve_url
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from accounts.services import TOKEN_PREFIX
from steward.identity import Role, seed_roles

logger = logging.getLogger(__name__)

__all__ = [
    "OIDCBearerAuthentication",
    "provider_logout_url",
    "roles_from_claims",
    "sync_roles",
    "user_for_claims",
    "validate_access_token",
]


def _role_names() -> frozenset[str]:
    """Role names an IdP group may grant: Steward's roles plus ``STEWARD_OIDC_EXTRA_ROLES``."""
    return frozenset(Role.values) | frozenset(settings.STEWARD_OIDC_EXTRA_ROLES)


def roles_from_claims(claims: dict[str, Any]) -> set[str]:
    """The Steward role names the claims' groups map to (``/a/b`` paths count as their last part)."""
    raw = claims.get(settings.STEWARD_OIDC_ROLES_CLAIM) or []
    if isinstance(raw, str):
        raw = [raw]
    mapping = settings.STEWARD_OIDC_GROUP_ROLES
    known = _role_names()
    roles = set()
    for value in raw:
        group = str(value).strip("/").split("/")[-1]
        role = mapping.get(group, group)
        if role in known:
            roles.add(role)
    return roles


def sync_roles(user: Any, claims: dict[str, Any]) -> frozenset[str]:
    """Make the user's role groups exactly those the claims map to; writes only when they differ."""
    wanted = roles_from_claims(claims)
    known = _role_names()
    names = set(user.groups.values_list("name", flat=True))
    current = names & known
    if current != wanted:
        with transaction.atomic():
            user.groups.remove(*Group.objects.filter(name__in=current - wanted))
            user.groups.add(*(Group.objects.get_or_create(name=name)[0] for name in wanted - current))
        names = (names - current) | wanted
    for attr in ("_steward_roles", "_steward_viewer"):
        if hasattr(user, attr):
            delattr(user, attr)
    return seed_roles(user, names)


def username_from_claims(claims: dict[str, Any]) -> str:
    return str(claims.get("preferred_username") or claims.get("sub") or "")


def user_for_claims(claims: dict[str, Any]) -> Any:
    """The Django user for validated claims (created on first sight), roles synced from its groups."""
    username = username_from_claims(claims)
    if not username:
        raise exceptions.AuthenticationFailed("The access token names no user (no preferred_username or sub).")
    model = get_user_model()
    user = model.objects.filter(username=username).first()
    if user is None:
        try:
            with transaction.atomic():
                user = model.objects.create_user(
                    username=username,
                    email=claims.get("email", ""),
                    first_name=claims.get("given_name", ""),
                    last_name=claims.get("family_name", ""),
                )
        except IntegrityError:  # created by a concurrent request
            user = model.objects.get(username=username)
    if not user.is_active:
        raise exceptions.AuthenticationFailed("This account is disabled.")
    sync_roles(user, claims)
    return user


# --- Bearer access tokens --------------------------------------------------------------------------

_jwks_lock = threading.Lock()
_jwks_clients: dict[str, jwt.PyJWKClient] = {}


def _jwks_client() -> jwt.PyJWKClient:
    url = settings.OIDC_OP_JWKS_ENDPOINT
    if not url:
        raise exceptions.AuthenticationFailed("Bearer access tokens are not accepted: no OIDC_OP_JWKS_ENDPOINT.")
    with _jwks_lock:
        client = _jwks_clients.get(url)
        if client is None:
            # Keys are cached; a token signed with an unknown key id refetches the set once (key rotation).
            lifespan = settings.STEWARD_OIDC_JWKS_CACHE_SECONDS
            client = jwt.PyJWKClient(url, cache_keys=True, lifespan=lifespan, timeout=10)
            _jwks_clients[url] = client
        return client


def validate_access_token(token: str) -> dict[str, Any]:
    """The claims of a provider-signed access token, or ``AuthenticationFailed`` saying what is wrong."""
    try:
        key = _jwks_client().get_signing_key_from_jwt(token)
    except jwt.PyJWKClientConnectionError as exc:
        logger.warning("OIDC JWKS endpoint unreachable: %s", exc)
        raise exceptions.AuthenticationFailed("The identity provider's keys could not be fetched.") from exc
    except (jwt.PyJWKClientError, jwt.DecodeError) as exc:
        raise exceptions.AuthenticationFailed("The bearer token is not a JWT signed by a key of the provider.") from exc
    try:
        claims = jwt.decode(
            token,
            key=key.key,
            algorithms=[settings.OIDC_RP_SIGN_ALGO],
            audience=settings.STEWARD_OIDC_AUDIENCE,
            issuer=settings.OIDC_OP_ISSUER,
            leeway=settings.STEWARD_OIDC_LEEWAY_SECONDS,
            options={"require": ["exp", "iat", "iss", "aud"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise exceptions.AuthenticationFailed("The bearer token has expired.") from exc
    except jwt.InvalidAudienceError as exc:
        audience = settings.STEWARD_OIDC_AUDIENCE
        raise exceptions.AuthenticationFailed(
            f"The bearer token is not meant for this service (its audience must include {audience!r})."
        ) from exc
    except jwt.InvalidIssuerError as exc:
        raise exceptions.AuthenticationFailed(
            f"The bearer token was not issued by the trusted provider ({settings.OIDC_OP_ISSUER})."
        ) from exc
    except jwt.InvalidSignatureError as exc:
        raise exceptions.AuthenticationFailed("The bearer token's signature is invalid.") from exc
    except jwt.InvalidTokenError as exc:
        raise exceptions.AuthenticationFailed(f"The bearer token is invalid: {exc}.") from exc
    # Keycloak marks its tokens' kind: an ID token (typ "ID") also names Steward as audience, but is no access token.
    if str(claims.get("typ", "Bearer")).lower() != "bearer":
        raise exceptions.AuthenticationFailed("The bearer token is not an access token.")
    return claims


class OIDCBearerAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer <JWT>`` from the OIDC provider (Steward's own ``stw_`` tokens are left alone)."""

    def authenticate(self, request: Any) -> tuple[Any, Any] | None:
        if not settings.OIDC_OP_JWKS_ENDPOINT:
            return None  # single sign-on is not configured
        parts = authentication.get_authorization_header(request).decode("latin-1").split()
        if len(parts) != 2 or parts[0].lower() != "bearer" or parts[1].startswith(TOKEN_PREFIX):
            return None
        claims = validate_access_token(parts[1])
        return user_for_claims(claims), claims

    def authenticate_header(self, request: Any) -> str:
        return 'Bearer realm="steward"'


class OIDCBearerScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.sso.OIDCBearerAuthentication"
    name = "oidcBearer"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "OIDC access token."}


# --- Logout ------------------------------------------------------------------------------------------


def provider_logout_url(request: HttpRequest) -> str:
    """Where the browser goes after Steward's logout (``OIDC_OP_LOGOUT_URL_METHOD``): the provider's
    end-session endpoint when the user signed in through it, which then returns to ``LOGOUT_REDIRECT_URL``."""
    back = request.build_absolute_uri(resolve_url(settings.LOGOUT_REDIRECT_URL))
    id_token = request.session.get("oidc_id_token")
    if not settings.OIDC_OP_LOGOUT_ENDPOINT or not id_token:
        return back  # a local login: nothing to end at the provider
    query = {"id_token_hint": id_token, "post_logout_redirect_uri": back, "client_id": settings.OIDC_RP_CLIENT_ID}
    return f"{settings.OIDC_OP_LOGOUT_ENDPOINT}?{urlencode(query)}"
