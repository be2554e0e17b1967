"""Personal API tokens: create (secret shown once), revoke, authenticate."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from governance import audit
from governance.models import ApiToken
from steward.errors import ValidationFailed

__all__ = ["TOKEN_PREFIX", "token_authenticate", "token_create", "token_revoke"]

TOKEN_PREFIX = "stw_"
MAX_TOKEN_DAYS = 366


@transaction.atomic
def token_create(*, actor, user, name: str, expires_in_days: int | None = 90) -> tuple[ApiToken, str]:  # noqa: ANN001
    """Create a token for ``user``; returns the row and the plain secret (never stored)."""
    name = (name or "").strip()
    if not name:
        raise ValidationFailed.one("name", "A token needs a name.", "required")
    if expires_in_days is not None and not 1 <= expires_in_days <= MAX_TOKEN_DAYS:
        raise ValidationFailed.one("expires_in_days", f"Must be between 1 and {MAX_TOKEN_DAYS}.")
    prefix = secrets.token_hex(4)
    secret = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    now = timezone.now()
    token = ApiToken.objects.create(
        user=user,
        name=name[:100],
        prefix=prefix,
        digest=ApiToken.hash_secret(secret),
        created_at=now,
        expires_at=now + timedelta(days=expires_in_days) if expires_in_days else None,
    )
    audit.record(
        actor=actor, action="governance.token.create", target=token, after={"name": token.name, "prefix": prefix}
    )
    return token, secret


@transaction.atomic
def token_revoke(*, actor, token: ApiToken) -> ApiToken:  # noqa: ANN001
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit.record(actor=actor, action="governance.token.revoke", target=token)
    return token


def token_authenticate(secret: str, *, now: datetime | None = None) -> ApiToken | None:
    """The active token whose secret this is, or ``None``. Records last use at most once a minute."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    now = now or timezone.now()
    token = ApiToken.objects.select_related("user").filter(digest=ApiToken.hash_secret(secret)).first()
    if token is None or not token.is_active_at(now) or not token.user.is_active:
        return None
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token
