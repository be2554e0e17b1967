"""Datasets and their schema fields. Identity follows OpenLineage: ``(namespace, name)``."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.utils import timezone


class Dataset(models.Model):
    """A table, file set, topic or other data asset.

    ``classification`` is the level set directly on the dataset (blank for none);
    ``effective_classification`` is computed by services from direct levels and the tags' implied levels.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    namespace = models.CharField(max_length=255)
    name = models.CharField(max_length=512)
    platform = models.CharField(max_length=64, db_index=True)
    description = models.TextField(blank=True)
    classification = models.CharField(max_length=16, blank=True)
    # Not indexed, so that reclassifying a dataset (propagation rewrites it for a whole region) is a heap-only
    # (HOT) update that touches none of the table's indexes; the table keeps free room in its pages for that
    # (fillfactor, migration 0011). Filters on the level are rare and combined with others.
    effective_classification = models.CharField(max_length=16)
    properties = models.JSONField(default=dict, blank=True)
    # What lineage producers last said about this dataset (docs/lineage.md "Facets that carry meaning"):
    # description, owners, unresolved_owners, tags, field_tags, unknown_tags, platform, aliases, by, at.
    # A producer's value reaches the attribute itself only while no person has set it ("people win").
    # (The database default serves writers that COPY rows without this column, e.g. bench/.)
    producer_facts = models.JSONField(
        default=dict, blank=True, db_default=models.Value({}, output_field=models.JSONField())
    )
    # Set when the source that crawled it no longer has it (``sources``): kept, with its history, marked removed.
    removed_at = models.DateTimeField(null=True, blank=True, db_index=True)
    owner_users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="owned_datasets")
    owner_groups = models.ManyToManyField(Group, blank=True, related_name="owned_datasets")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["namespace", "name"]
        constraints = [models.UniqueConstraint(fields=["namespace", "name"], name="dataset_identity")]
        # The web list's keyset pages (catalog.selectors.dataset_page) walk datasets by name.
        indexes = [models.Index(fields=["name", "namespace"], name="dataset_name_namespace")]

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"

    def snapshot(self) -> dict:
        return {
            "namespace": self.namespace,
            "name": self.name,
            "description": self.description,
            "classification": self.classification,
            "effective_classification": self.effective_classification,
        }


class SchemaField(models.Model):
    """A column (or nested field, by dotted name) of a dataset's current schema."""

    # ``field_identity`` (dataset, name) serves the lookups by dataset.
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="fields", db_index=False)
    name = models.CharField(max_length=255)
    type = models.CharField(max_length=100, blank=True)
    ordinal = models.PositiveIntegerField(default=0)
    description = models.TextField(blank=True)
    classification = models.CharField(max_length=16, blank=True)

    class Meta:
        ordering = ["dataset", "ordinal", "name"]
        constraints = [models.UniqueConstraint(fields=["dataset", "name"], name="field_identity")]

    def __str__(self) -> str:
        return f"{self.dataset_id}:{self.name}"


class DatasetAlias(models.Model):
    """Another identity of a dataset, from an OpenLineage ``symlinks`` facet (a Glue or Hive table name for
    an S3 path, say): ``GET /api/v1/datasets/lookup`` with the alias finds the dataset."""

    namespace = models.CharField(max_length=255)
    name = models.CharField(max_length=512)
    type = models.CharField(max_length=64, blank=True)
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="aliases")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["namespace", "name"]
        constraints = [models.UniqueConstraint(fields=["namespace", "name"], name="dataset_alias_identity")]

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name} -> {self.dataset_id}"
