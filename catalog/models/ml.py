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
    # Whose access the training run used (its inputs are checked against this user's grants); default created_by.
    trained_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

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


class Deployment(models.Model):
    """A model version serving in an environment over ``[deployed_from, deployed_to)`` (open: still serving)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="deployments")
    environment = models.CharField(max_length=64)
    endpoint = models.CharField(max_length=1024, blank=True)
    deployed_from = models.DateTimeField()
    deployed_to = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)

    class Meta:
        ordering = ["-deployed_from"]
        indexes = [models.Index(fields=["model_version", "deployed_from"], name="deployment_version_from")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(deployed_to__isnull=True) | models.Q(deployed_to__gt=models.F("deployed_from")),
                name="deployment_window_not_empty",
            )
        ]

    def __str__(self) -> str:
        return f"{self.model_version} in {self.environment}"

    def snapshot(self) -> dict:
        return {
            "model_version": str(self.model_version_id),
            "environment": self.environment,
            "endpoint": self.endpoint,
            "deployed_from": self.deployed_from.isoformat(),
            "deployed_to": self.deployed_to.isoformat() if self.deployed_to else None,
        }


class ResultRecord(models.Model):
    """One output of a model: when, from which input (a reference, not the data) and a digest of the output.

    ``deployment`` and ``model_version`` are resolved when the record is ingested (the deployment of the model
    serving at ``produced_at``). Records are immutable; re-sending one is a no-op (``id`` is derived from its
    content unless the producer gives one).
    """

    id = models.UUIDField(primary_key=True, editable=False)
    model = models.ForeignKey(MLModel, on_delete=models.PROTECT, related_name="results")
    # Indexed with produced_at below (a deployment's results in time order: one index range, no sort).
    deployment = models.ForeignKey(
        Deployment, on_delete=models.PROTECT, null=True, blank=True, related_name="results", db_index=False
    )
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="results")
    produced_at = models.DateTimeField()
    input_ref = models.CharField(max_length=1024)
    output_digest = models.CharField(max_length=100)
    received_at = models.DateTimeField(default=timezone.now)
    received_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)

    class Meta:
        ordering = ["-produced_at"]
        indexes = [
            models.Index(fields=["model", "produced_at"], name="result_model_time"),
            models.Index(fields=["deployment", "produced_at"], name="result_deployment_time"),
        ]

    def __str__(self) -> str:
        return f"result {self.pk} of {self.model_id} at {self.produced_at.isoformat()}"
