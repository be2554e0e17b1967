"""Sources and their runs. Credentials are stored encrypted (``sources.crypto``), never in plain text."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

__all__ = ["RunState", "Source", "SourceDataset", "SourceRun"]


class Source(models.Model):
    """A system Steward crawls: a ``kind`` (a key of ``STEWARD_SOURCE_READERS``), its non-secret ``config``,
    its credentials (Fernet-encrypted JSON), a schedule (seconds between crawls, or a crontab line)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.SlugField(max_length=100, unique=True)
    kind = models.CharField(max_length=32)
    config = models.JSONField(default=dict, blank=True)
    credentials_encrypted = models.TextField(blank=True, editable=False)
    schedule = models.CharField(max_length=100, blank=True, help_text='Seconds ("3600") or crontab ("0 3 * * *").')
    enabled = models.BooleanField(default=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="sources"
    )
    # What the source's lineage events said last, by job (``namespace name`` -> digest): unchanged views send none.
    lineage_state = models.JSONField(default=dict, blank=True, editable=False)
    next_run_at = models.DateTimeField(null=True, blank=True, db_index=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def snapshot(self) -> dict:
        """For audit values: never the credentials, only whether there are some."""
        return {
            "name": self.name,
            "kind": self.kind,
            "config": self.config,
            "schedule": self.schedule,
            "enabled": self.enabled,
            "owner": self.owner.username if self.owner_id and self.owner else None,
            "has_credentials": bool(self.credentials_encrypted),
        }


class RunState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class SourceRun(models.Model):
    """One crawl of a source: its state, what it changed, and its error."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="runs")
    state = models.CharField(max_length=16, choices=RunState.choices, default=RunState.QUEUED, db_index=True)
    trigger = models.CharField(max_length=16, default="api")  # api | schedule | command
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    queued_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    removed = models.PositiveIntegerField(default=0)
    edges = models.PositiveIntegerField(default=0, help_text="Lineage events applied (views whose lineage changed).")
    error = models.TextField(blank=True)
    warnings = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-queued_at"]
        indexes = [models.Index(fields=["source", "-queued_at"], name="sourcerun_source_recent")]

    def __str__(self) -> str:
        return f"{self.source_id} {self.state} {self.queued_at:%Y-%m-%d %H:%M}"


class SourceDataset(models.Model):
    """A dataset a source has seen: the digest of what it said last (an unchanged one is skipped), and since
    when it is gone from the source (``removed_at``)."""

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="datasets")
    dataset = models.ForeignKey("catalog.Dataset", on_delete=models.CASCADE, related_name="+")
    digest = models.CharField(max_length=64)
    seen_at = models.DateTimeField(default=timezone.now)
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "dataset"], name="source_dataset_identity")]

    def __str__(self) -> str:
        return f"{self.source_id}:{self.dataset_id}"
