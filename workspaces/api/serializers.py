"""Workspace API shapes: input serializers (checked shape only) and output serializers."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from governance.api.serializers import DatasetRefField
from steward.api.serializers import StrictSerializer
from workspaces.choices import DesiredState, EventKind, WorkspaceState
from workspaces.models import Template, Workspace, WorkspaceDataset
from workspaces.quantities import format_cpu, format_memory


class ResourcesInput(StrictSerializer):
    """Compute for the workspace; each omitted one is the template's default."""

    cpu = serializers.JSONField(required=False, help_text='Cores or millicores: "2", "0.5", "500m" (or a number).')
    memory = serializers.JSONField(required=False, help_text='"512Mi", "4Gi", "1G", or bytes.')
    gpu = serializers.JSONField(required=False, help_text="Whole GPUs (0 to 16).")


class WorkspaceCreateInput(StrictSerializer):
    """A new workspace: a template, resources, the datasets to mount (each covered by a grant of yours)."""

    template = serializers.CharField(max_length=63, help_text="A template name: jupyter-cpu, jupyter-gpu, vscode, ...")
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    project = serializers.SlugField(max_length=63, required=False, allow_null=True, default=None)
    resources = ResourcesInput(required=False, allow_null=True, help_text="Defaults: the template's.")
    start = serializers.BooleanField(default=True, help_text="false: create it stopped (start it later).")
    datasets = serializers.ListField(
        child=DatasetRefField(),
        required=False,
        default=list,
        max_length=100,
        help_text="Datasets to mount; each must be covered by a grant of yours valid now.",
    )


class ResourcesSerializer(serializers.Serializer):
    cpu = serializers.CharField()
    memory = serializers.CharField()
    gpu = serializers.IntegerField()


class TemplateSerializer(serializers.Serializer):
    name = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField()
    image = serializers.CharField()
    command = serializers.ListField(child=serializers.CharField())
    resources = serializers.SerializerMethodField()

    def get_resources(self, obj: Template) -> dict[str, Any]:
        return {"cpu": format_cpu(obj.cpu_millis), "memory": format_memory(obj.memory_bytes), "gpu": obj.gpu}


class WorkspaceDatasetSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="dataset_id")
    namespace = serializers.CharField(source="dataset.namespace")
    name = serializers.CharField(source="dataset.name")
    grant_id = serializers.UUIDField(allow_null=True, help_text="The workspace's own grant on the dataset.")
    grant_valid_until = serializers.DateTimeField(source="grant.valid_until", allow_null=True, default=None)
    mounted = serializers.BooleanField(help_text="In the workspace as the connector last accepted it.")
    unmounted_reason = serializers.CharField(help_text="Why it is not mounted (a grant expired, was revoked...).")


class WorkspaceEventSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    kind = serializers.ChoiceField(choices=EventKind.choices)
    from_state = serializers.CharField()
    to_state = serializers.CharField()
    message = serializers.CharField()
    actor = serializers.CharField()
    repeats = serializers.IntegerField(help_text="How many times this error was seen (once for other events).")
    last_at = serializers.DateTimeField()


class WorkspaceSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    owner = serializers.CharField(source="owner.username")
    project = serializers.CharField(source="project.name", allow_null=True, default=None)
    template = serializers.CharField(source="template.name")
    resources = serializers.SerializerMethodField()
    datasets = serializers.SerializerMethodField()
    state = serializers.ChoiceField(choices=WorkspaceState.choices)
    desired_state = serializers.ChoiceField(choices=DesiredState.choices)
    url = serializers.CharField(help_text="Where to open the workspace (empty until the connector reports one).")
    message = serializers.CharField(help_text="The latest observation or error.")
    attempts = serializers.IntegerField(help_text="Failed attempts to reach the connector in a row.")
    retry_at = serializers.DateTimeField(allow_null=True)
    connector = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    events = serializers.SerializerMethodField(help_text="Newest first (the latest 10 in lists).")

    def get_resources(self, obj: Workspace) -> dict[str, Any]:
        return {"cpu": format_cpu(obj.cpu_millis), "memory": format_memory(obj.memory_bytes), "gpu": obj.gpu}

    def get_datasets(self, obj: Workspace) -> list[dict[str, Any]]:
        links: list[WorkspaceDataset] = list(obj.datasets.all())
        return list(WorkspaceDatasetSerializer(links, many=True).data)

    def get_events(self, obj: Workspace) -> list[dict[str, Any]]:
        events = getattr(obj, "recent_events", None)
        if events is None:
            events = list(obj.events.order_by("-at", "-id"))
        return list(WorkspaceEventSerializer(events, many=True).data)
