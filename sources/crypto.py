"""Sources' credentials at rest: Fernet (AES-128-CBC + HMAC-SHA256) under a key derived from a setting.

``STEWARD_SOURCE_KEY`` (any string), or ``SECRET_KEY`` when it is empty, is stretched with SHA-256 into the
Fernet key. Changing that setting makes stored credentials unreadable: crawls then fail saying to enter them again.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

__all__ = ["CredentialsUnreadable", "decrypt", "encrypt"]


class CredentialsUnreadable(Exception):
    """Stored credentials do not decrypt (the key setting changed)."""


def _fernet() -> Fernet:
    secret = settings.STEWARD_SOURCE_KEY or settings.SECRET_KEY
    digest = hashlib.sha256(b"steward.sources.credentials:" + secret.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt(credentials: dict[str, Any]) -> str:
    """The token stored for ``credentials`` (empty for none)."""
    if not credentials:
        return ""
    return _fernet().encrypt(json.dumps(credentials, sort_keys=True).encode()).decode()


def decrypt(token: str) -> dict[str, Any]:
    if not token:
        return {}
    try:
        return json.loads(_fernet().decrypt(token.encode()))
    except (InvalidToken, ValueError):
        raise CredentialsUnreadable(
            "The stored credentials cannot be decrypted (STEWARD_SOURCE_KEY or STEWARD_SECRET_KEY changed); "
            "enter the source's credentials again."
        ) from None
