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
    popularity = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "object_id"], name="search_entry_identity")]
        indexes = [
            # Results within a relevance tier come most used first, then shortest name first: an ordered scan of
            # this index stops after one page.
            models.Index(
                F("popularity").desc(), Length("qualified_name"), F("qualified_name"), name="searchentry_rank"
            ),
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


class AssetPopularity(models.Model):
    """How much an asset is used, as counters: opened (detail page or API), asked for (access requests), read
    by lineage jobs (new lineage edges from it). Bumped with one upsert per event, never history; ``changed``
    marks rows whose score the search index has not seen yet (``catalog.popularity_flush`` pushes them)."""

    kind = models.CharField(max_length=16)
    object_id = models.UUIDField()
    opens = models.PositiveBigIntegerField(default=0)
    requests = models.PositiveBigIntegerField(default=0)
    lineage_uses = models.PositiveBigIntegerField(default=0)
    changed = models.BooleanField(default=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "object_id"], name="asset_popularity_identity")]
        indexes = [models.Index(fields=["kind"], condition=models.Q(changed=True), name="asset_popularity_changed")]

    def __str__(self) -> str:
        return f"{self.kind}:{self.object_id}"


class SearchPrefix(models.Model):
    """Typeahead for the database backend: one row per prefix (2..``MAX_PREFIX`` characters) of each word of an
    entry's name, with the entry's rank, so a suggestion is one ordered range scan of an index that stops after
    a page, however many names share the prefix (edge n-grams, computed in Python at index time)."""

    MIN_PREFIX = 2
    MAX_PREFIX = 12

    entry = models.ForeignKey(SearchEntry, on_delete=models.CASCADE, related_name="+", db_index=False)
    prefix = models.CharField(max_length=MAX_PREFIX)
    popularity = models.BigIntegerField(default=0)
    name_length = models.IntegerField()

    class Meta:
        indexes = [
            models.Index(F("prefix"), F("popularity").desc(), F("name_length"), F("entry"), name="searchprefix_rank"),
            models.Index(fields=["entry"], name="searchprefix_entry"),
        ]

    def __str__(self) -> str:
        return self.prefix
