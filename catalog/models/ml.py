"""ML models and their versions."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.utils import timezone


class ModelStage(models.TextChoices):
    NONE = "none", "None"
    STAGING = "staging", "Staging"
    PRODUCTION = "production", "Production"
    ARCHIVED = "archived", "Archived"


class MLModel(models.Model):
    """A registered machine-learning model (the family of its versions)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=255, unique=True)
    description = models.TextField(blank=True)
    classification = models.CharField(max_length=16, blank=True)
    effective_classification = models.CharField(max_length=16, db_index=True)
    tags = models.ManyToManyField("catalog.Tag", blank=True, related_name="models")
    owner_users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="owned_models")
    owner_groups = models.ManyToManyField(Group, blank=True, related_name="owned_models")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        verbose_name = "ML model"

    def __str__(self) -> str:
        return self.name

    def snapshot(self) -> dict:
        return {"name": self.name, "description": self.description, "classification": self.classification}


class ModelVersion(models.Model):
    """One trained version: what was built, from which code and image, with which results."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    model = models.ForeignKey(MLModel, on_delete=models.CASCADE, related_name="versions")
    version = models.CharField(max_length=64)
    description = models.TextField(blank=True)
    artifact_uri = models.CharField(max_length=1024)
    artifact_digest = models.CharField(max_length=100, blank=True)
    image_digest = models.CharField(max_length=100, blank=True)
    code_commit = models.CharField(max_length=64, blank=True)
    framework = models.CharField(max_length=64, blank=True)
    parameters = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    stage = models.CharField(max_length=16, choices=ModelStage.choices, default=ModelStage.NONE)
    # The OpenLineage runId of the training run; its input datasets' tags are inherited (lineage app).
    training_run_id = models.UUIDField(null=True, blank=True, db_index=True)
    inherited_tags = models.JSONField(default=list, blank=True)
    effective_classification = models.CharField(max_length=16, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)

    class Meta:
        ordering = ["model", "-created_at"]
        constraints = [models.UniqueConstraint(fields=["model", "version"], name="model_version_identity")]

    def __str__(self) -> str:
        return f"{self.model.name}:{self.version}"

    def snapshot(self) -> dict:
        return {
            "version": self.version,
            "artifact_uri": self.artifact_uri,
            "artifact_digest": self.artifact_digest,
            "image_digest": self.image_digest,
            "code_commit": self.code_commit,
            "training_run_id": str(self.training_run_id) if self.training_run_id else None,
            "stage": self.stage,
        }
