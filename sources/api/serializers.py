"""Source API shapes. ``credentials`` is write-only: no response ever holds it, only ``has_credentials``."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from sources.models import Source, SourceRun
from steward.api.serializers import StrictSerializer


class SourceInput(StrictSerializer):
    """A source to create (all of name, kind) or change (any subset)."""

    name = serializers.CharField(max_length=100, required=False, help_text="Unique; lowercase, digits, - and _.")
    kind = serializers.CharField(max_length=32, required=False, help_text="postgres or dbt (STEWARD_SOURCE_READERS).")
    config = serializers.DictField(
        required=False, help_text="Non-secret connection: host, port, database, schemas, exclude_schemas, paths..."
    )
    credentials = serializers.DictField(
        child=serializers.CharField(),
        required=False,
        allow_null=True,
        write_only=True,
        help_text="Secrets (user, password), stored encrypted and never returned.",
    )
    schedule = serializers.CharField(
        required=False, allow_blank=True, allow_null=True, help_text='Seconds ("3600"), crontab ("0 3 * * *"), or "".'
    )
    enabled = serializers.BooleanField(required=False)
    owner = serializers.CharField(required=False, allow_blank=True, allow_null=True, help_text="A username.")


class SourceRunSerializer(serializers.ModelSerializer):
    source = serializers.UUIDField(source="source_id", read_only=True)  # type: ignore[assignment]  # a response key
    requested_by = serializers.CharField(source="requested_by.username", read_only=True, allow_null=True)
    # Declared (not derived from PositiveIntegerField), so the schema is the same on every database.
    created = serializers.IntegerField(read_only=True, help_text="Datasets created.")
    updated = serializers.IntegerField(read_only=True, help_text="Datasets changed.")
    unchanged = serializers.IntegerField(read_only=True, help_text="Datasets the source said again unchanged.")
    removed = serializers.IntegerField(read_only=True, help_text="Datasets marked removed.")
    edges = serializers.IntegerField(read_only=True, help_text="Lineage events applied (views whose lineage changed).")

    class Meta:
        model = SourceRun
        fields = [
            "id",
            "source",
            "state",
            "trigger",
            "requested_by",
            "queued_at",
            "started_at",
            "finished_at",
            "created",
            "updated",
            "unchanged",
            "removed",
            "edges",
            "error",
            "warnings",
        ]


class SourceSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True, allow_null=True)
    has_credentials = serializers.SerializerMethodField()
    last_run = serializers.SerializerMethodField()

    class Meta:
        model = Source
        fields = [
            "id",
            "name",
            "kind",
            "config",
            "has_credentials",
            "schedule",
            "enabled",
            "owner",
            "next_run_at",
            "last_run",
            "created_at",
            "updated_at",
        ]

    def get_has_credentials(self, obj: Source) -> bool:
        return bool(obj.credentials_encrypted)

    @extend_schema_field(SourceRunSerializer(allow_null=True))
    def get_last_run(self, obj: Source) -> dict[str, Any] | None:
        run = obj.runs.order_by("-queued_at").first()
        return dict(SourceRunSerializer(run).data) if run else None
