"""Personal API tokens, stored hashed."""

from __future__ import annotations

import hashlib
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class TokenScope(models.TextChoices):
    """What a scoped token may do (a scoped token may do nothing else)."""

    LINEAGE_WRITE = "lineage:write", "Send OpenLineage events"


class ApiToken(models.Model):
    """A revocable personal API token. Only a SHA-256 digest of the secret is stored.

    The secret is shown once, at creation, as ``stw_<prefix>_<secret>``.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, unique=True)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Space-separated scopes (``TokenScope``). Empty: a personal token that acts with all of its user's rights.
    # A scoped token may call only the endpoints that declare one of its scopes, and nothing else.
    scopes = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        db_table = "governance_apitoken"  # created by governance before the move
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @staticmethod
    def hash_secret(secret: str) -> str:
        return hashlib.sha256(secret.encode()).hexdigest()

    @property
    def scope_set(self) -> frozenset[str]:
        return frozenset(self.scopes.split())

    def is_active_at(self, at) -> bool:  # noqa: ANN001
        return self.revoked_at is None and (self.expires_at is None or at < self.expires_at)
