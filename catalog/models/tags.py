"""Tags (the vocabulary) and their direct assignments to datasets and fields."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Tag(models.Model):
    """A label such as ``pii.email``. ``implied_level`` raises the classification of what carries it."""

    key = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    implied_level = models.CharField(max_length=16, blank=True)
    propagates = models.BooleanField(default=True, help_text="Flows downstream along lineage.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key


class TagAssignment(models.Model):
    """A tag set directly on a dataset (``field`` null) or on one of its fields."""

    tag = models.ForeignKey(Tag, on_delete=models.PROTECT, related_name="assignments")
    dataset = models.ForeignKey("catalog.Dataset", on_delete=models.CASCADE, related_name="tag_assignments")
    field = models.ForeignKey(
        "catalog.SchemaField", on_delete=models.CASCADE, null=True, blank=True, related_name="tag_assignments"
    )
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["dataset", "tag"], condition=models.Q(field__isnull=True), name="tag_once_per_dataset"
            ),
            models.UniqueConstraint(
                fields=["field", "tag"], condition=models.Q(field__isnull=False), name="tag_once_per_field"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tag_id}@{self.dataset_id}/{self.field_id or ''}"
