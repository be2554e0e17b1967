"""The database search backend's projection: one entry per asset plus facet terms.

A projection of the catalog, rebuilt by ``manage.py search_reindex``; never a source of truth.
On PostgreSQL a migration adds a weighted ``tsvector`` column and trigram index (see migration 0002).
"""

from __future__ import annotations

from django.db import models


class SearchEntry(models.Model):
    """A searchable asset as the database backend stores it."""

    kind = models.CharField(max_length=16)
    object_id = models.UUIDField()
    name = models.CharField(max_length=512)
    qualified_name = models.CharField(max_length=800)
    namespace = models.CharField(max_length=255, blank=True)
    platform = models.CharField(max_length=64, blank=True)
    description = models.TextField(blank=True)
    classification = models.CharField(max_length=16)
    hidden = models.BooleanField(default=False)
    name_text = models.TextField(blank=True)
    columns_text = models.TextField(blank=True)
    body_text = models.TextField(blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "object_id"], name="search_entry_identity")]
        indexes = [models.Index(fields=["kind", "platform", "classification"])]

    def __str__(self) -> str:
        return f"{self.kind}:{self.qualified_name}"


class SearchTerm(models.Model):
    """A facet value of an entry (``tag``, ``owner``, ``kind``...) or a ``reader`` principal of a hidden one."""

    entry = models.ForeignKey(SearchEntry, on_delete=models.CASCADE, related_name="terms")
    facet = models.CharField(max_length=16)
    value = models.CharField(max_length=255)

    class Meta:
        indexes = [models.Index(fields=["facet", "value"]), models.Index(fields=["entry", "facet"])]

    def __str__(self) -> str:
        return f"{self.facet}={self.value}"
