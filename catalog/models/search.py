"""The database search backend's projection: one row per asset, plus the vocabulary for typo correction.

A projection of the catalog, rebuilt by ``manage.py search_reindex``; never a source of truth.
On PostgreSQL, migration 0002 adds a weighted, generated ``tsvector`` column and GIN indexes.
"""

from __future__ import annotations

from django.db import models
from django.db.models import F
from django.db.models.functions import Length, Upper


class SearchEntry(models.Model):
    """A searchable asset as the database backend stores it.

    ``facet_values`` lists ``"facet:value"`` strings (``tag:pii.email``, ``owner:group:eng``, ``kind:dataset``)
    used for filters, facet counts and, through ``owner:``, visibility of hidden assets.
    """

    kind = models.CharField(max_length=16)
    object_id = models.UUIDField()
    name = models.CharField(max_length=512)
    qualified_name = models.CharField(max_length=800)
    namespace = models.CharField(max_length=255, blank=True)
    platform = models.CharField(max_length=64, blank=True)
    description = models.TextField(blank=True)
    classification = models.CharField(max_length=16)
    hidden = models.BooleanField(default=False)
    tags = models.JSONField(default=list)
    facet_values = models.JSONField(default=list)
    name_text = models.TextField(blank=True)
    columns_text = models.TextField(blank=True)
    body_text = models.TextField(blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "object_id"], name="search_entry_identity")]
        indexes = [
            # Results within a relevance tier come shortest name first: an ordered scan stops after one page.
            models.Index(Length("qualified_name"), F("qualified_name"), name="searchentry_len_name"),
            models.Index(Upper("name"), name="searchentry_upper_name"),
            models.Index(Upper("qualified_name"), name="searchentry_upper_qname"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.qualified_name}"


class SearchWord(models.Model):
    """A word seen in asset or column names: the vocabulary misspelt query words are corrected against."""

    word = models.CharField(max_length=100, primary_key=True)

    def __str__(self) -> str:
        return self.word
