"""The access policy, stored as immutable versions; the highest version is in effect."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class PolicyVersion(models.Model):
    """One version of the access policy. Rows are never changed: each edit inserts the next version.

    ``purposes`` maps purpose keys to descriptions; ``levels`` maps classification codes to
    ``{"approvers": [...], "max_duration": "PT8H", "purposes": [...]}`` (no approvers: auto-approved);
    ``toxic_combinations`` lists ``{"name", "tags", "description"}``: tag sets one subject may not hold at once.
    ``governance.services.policy`` validates every document before it is stored.
    """

    version = models.PositiveIntegerField(primary_key=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    created_by_name = models.CharField(max_length=150, blank=True)
    note = models.TextField(blank=True)
    purposes = models.JSONField(default=dict)
    levels = models.JSONField(default=dict)
    toxic_combinations = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-version"]
        verbose_name = "policy version"

    def __str__(self) -> str:
        return f"policy v{self.version}"

    def document(self) -> dict:
        """The policy content (what an edit replaces), without the version's metadata."""
        return {"purposes": self.purposes, "levels": self.levels, "toxic_combinations": self.toxic_combinations}
