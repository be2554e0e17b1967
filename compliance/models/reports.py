"""Compliance reports: a reconstruction as it was handed to someone, with its digest."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class ComplianceReport(models.Model):
    """One reconstruction, stored exactly as delivered (``bundle``) with the SHA-256 of its canonical JSON.

    Reports are never changed: asking again makes a new report (history may have gained later changes).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    query = models.JSONField()
    at = models.DateTimeField(help_text="The instant reconstructed.")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField(default=timezone.now, db_index=True)
    bundle = models.JSONField()
    digest = models.CharField(max_length=64)

    class Meta:
        db_table = "governance_compliancereport"  # created by governance before the move
        ordering = ["-requested_at"]

    def __str__(self) -> str:
        return f"compliance report {self.pk} ({self.at.isoformat()})"
