"""Keys that sign short-lived grant tokens; their public halves are published as a JWKS."""

from __future__ import annotations

from datetime import datetime

from django.db import models
from django.utils import timezone


class SigningKey(models.Model):
    """An Ed25519 key pair that signs grant tokens (JWS ``EdDSA``), named by its RFC 7638 thumbprint.

    ``private_key_encrypted`` is the PKCS#8 private key encrypted with Fernet under a key derived from
    ``SECRET_KEY``; it never leaves ``governance.services.signing``. The key signs from ``signs_from`` until
    ``retired_at`` (set when a successor takes over) and stays in the JWKS until every token it signed has
    expired, then the row is deleted.
    """

    kid = models.CharField(max_length=64, primary_key=True)
    algorithm = models.CharField(max_length=16, default="EdDSA")
    public_jwk = models.JSONField()
    private_key_encrypted = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    signs_from = models.DateTimeField(db_index=True)
    retired_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-signs_from"]

    def __str__(self) -> str:
        return self.kid

    def __repr__(self) -> str:
        return f"<SigningKey {self.kid}>"

    def signs_at(self, at: datetime) -> bool:
        """Whether this key is the one to sign with at ``at`` (ignoring newer keys)."""
        return self.signs_from <= at and (self.retired_at is None or at < self.retired_at)
