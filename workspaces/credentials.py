"""Where a mounted dataset's credentials come from, and how they are kept between reconciles.

A provider (``STEWARD_WORKSPACE_CREDENTIALS``, a dotted path) takes a ``MountGrant`` (the workspace's grant,
as plain data) and returns ``IssuedCredentials``: string values the workspace receives, and when they stop
working. The default, ``grant_token_credentials``, signs a Steward grant token for the workspace's grant
(``governance.services.signing.issue_token``: at most one hour, never past the grant), which a data-plane
proxy verifies offline against ``/.well-known/jwks.json``. Another provider (PostgreSQL login roles of the
data plane, cloud credentials) can be plugged in without changing the reconciler.

Issued credentials are stored sealed (Fernet, with a key derived from ``SECRET_KEY``) on the
``WorkspaceDataset`` row, so retries and periodic passes hand the connector the same spec (an unchanged
spec is a no-op) and new credentials are issued only when the old ones near their end.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from uuid import UUID

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from governance.services.signing import issue_token

__all__ = [
    "CredentialsProvider",
    "IssuedCredentials",
    "MountGrant",
    "get_provider",
    "grant_token_credentials",
    "seal",
    "unseal",
]


@dataclass(frozen=True)
class MountGrant:
    """The workspace's grant on one dataset: ``subject`` is ``workspace:<id>``; ``valid_until`` is aware."""

    grant_id: UUID
    subject: str
    namespace: str
    name: str
    valid_until: datetime


@dataclass(frozen=True)
class IssuedCredentials:
    """What the workspace receives for one dataset; ``expires_at`` ``None``: until the grant ends."""

    values: dict[str, str]
    expires_at: datetime | None = None


CredentialsProvider = Callable[..., IssuedCredentials]


def grant_token_credentials(grant: MountGrant, *, now: datetime) -> IssuedCredentials:
    """A signed grant token for the workspace's grant (the default provider)."""
    token, expires_at = issue_token(
        grant_id=grant.grant_id,
        subject=grant.subject,
        asset={"namespace": grant.namespace, "name": grant.name},
        grant_valid_until=grant.valid_until,
        now=now,
    )
    return IssuedCredentials(
        values={
            "type": "steward-grant-token",
            "token": token,
            "expires_at": expires_at.isoformat(),
            "issuer": settings.STEWARD_JWT_ISSUER,
            "audience": settings.STEWARD_JWT_AUDIENCE,
            "jwks_url": settings.STEWARD_BASE_URL.rstrip("/") + "/.well-known/jwks.json",
        },
        expires_at=expires_at,
    )


def get_provider() -> CredentialsProvider:
    """The configured provider (``STEWARD_WORKSPACE_CREDENTIALS``)."""
    return _load(settings.STEWARD_WORKSPACE_CREDENTIALS)


@lru_cache(maxsize=8)
def _load(path: str) -> CredentialsProvider:
    try:
        return import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(f"STEWARD_WORKSPACE_CREDENTIALS={path!r} cannot be imported: {exc}") from exc


def seal(values: dict[str, str]) -> str:
    """Encrypt credentials for storage."""
    return _fernet(settings.SECRET_KEY).encrypt(json.dumps(values, sort_keys=True).encode()).decode()


def unseal(sealed: str) -> dict[str, str] | None:
    """Decrypt stored credentials; ``None`` when they cannot be read (``SECRET_KEY`` changed): issue new ones."""
    if not sealed:
        return None
    try:
        return json.loads(_fernet(settings.SECRET_KEY).decrypt(sealed.encode()))
    except (InvalidToken, ValueError):
        return None


@lru_cache(maxsize=4)
@lru_cache(maxsize=4)
def _fernet(secret: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"steward workspace credentials").derive(
        secret.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))
