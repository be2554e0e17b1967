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

    @property
    def title(self) -> str:
        """What the report is about, by name: ``churn v3, result case-7`` (read from its own bundle)."""
        r = (self.bundle or {}).get("reconstruction") or {}
        model = ((r.get("model") or {}).get("state") or {}).get("name") or "model"
        version = ((r.get("model_version") or {}).get("state") or {}).get("version")
        result = (r.get("result") or {}).get("input_ref")
        return f"{model}{f' v{version}' if version else ''}{f', result {result}' if result else ''}"
