"""Workspaces, their templates, projects, mounted datasets and the events of their lives."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from connectors.workspaces.base import Resources, TemplateSpec
from workspaces.choices import DesiredState, EventKind, WorkspaceState
from workspaces.quantities import format_cpu, format_memory

__all__ = ["Project", "Template", "Workspace", "WorkspaceDataset", "WorkspaceEvent"]


class Project(models.Model):
    """A team sharing workspaces: members see the project's workspaces (their owner and admins change them).

    Kubernetes puts a project's workspaces in the project's namespace rather than their owner's.
    """

    name = models.SlugField(max_length=63, unique=True)
    title = models.CharField(max_length=200, blank=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="workspace_projects", blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Template(models.Model):
    """What a workspace runs: a container image and command, what the local connector runs, default resources.

    Templates are data (migration ``0002`` adds ``jupyter-cpu``, ``jupyter-gpu`` and ``vscode``; admins
    add more in the admin site). ``local_command`` placeholders: ``{host}``, ``{port}``, ``{home}``,
    ``{token}``, ``{python}``.
    """

    name = models.SlugField(max_length=63, unique=True)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    image = models.CharField(max_length=500)
    command = models.JSONField(default=list, blank=True, help_text="Container command; empty: the image's own.")
    local_command = models.JSONField(default=list, blank=True, help_text="What the local connector runs.")
    cpu_millis = models.PositiveIntegerField(default=1000)
    memory_bytes = models.PositiveBigIntegerField(default=2 * 2**30)
    gpu = models.PositiveSmallIntegerField(default=0)
    enabled = models.BooleanField(default=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name

    @property
    def default_resources(self) -> Resources:
        return Resources(cpu=format_cpu(self.cpu_millis), memory=format_memory(self.memory_bytes), gpu=self.gpu)

    def spec(self) -> TemplateSpec:
        """The connector's view of this template."""
        return TemplateSpec(
            name=self.name,
            image=self.image,
            command=list(self.command or []),
            default_resources=self.default_resources,
            local_command=list(self.local_command or []),
        )


class Workspace(models.Model):
    """A notebook or editor for its owner with the datasets their grants cover; run by a connector.

    ``desired_state`` is what was asked, ``state`` what the reconciler last observed. ``version`` grows with
    every request, so the reconciler knows a failure is old news (``failed_version``) and whether the
    desired state changed while it worked. ``message``: the latest observation or error; ``attempts`` and
    ``retry_at``: the backoff after an unreachable connector. ``applied_fingerprint``: what the connector
    last accepted (mounts and their credentials), so an unchanged workspace costs no connector call.
    ``lease_until``/``lease_holder``: one reconciler at a time.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="workspaces")
    project = models.ForeignKey(Project, on_delete=models.PROTECT, null=True, blank=True, related_name="workspaces")
    template = models.ForeignKey(Template, on_delete=models.PROTECT, related_name="workspaces")
    cpu_millis = models.PositiveIntegerField()
    memory_bytes = models.PositiveBigIntegerField()
    gpu = models.PositiveSmallIntegerField(default=0)
    connector = models.CharField(max_length=32)
    desired_state = models.CharField(max_length=16, choices=DesiredState.choices, default=DesiredState.RUNNING)
    state = models.CharField(max_length=16, choices=WorkspaceState.choices, default=WorkspaceState.REQUESTED)
    url = models.CharField(max_length=1000, blank=True)
    message = models.TextField(blank=True)
    version = models.PositiveIntegerField(default=1)
    failed_version = models.PositiveIntegerField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    retry_at = models.DateTimeField(null=True, blank=True)
    applied_fingerprint = models.CharField(max_length=64, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    lease_holder = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    state_changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["owner", "desired_state"], name="workspace_owner_quota"),
            models.Index(fields=["connector", "state"], name="workspace_reconcile"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(cpu_millis__gt=0), name="workspace_cpu_positive"),
            models.CheckConstraint(condition=Q(memory_bytes__gt=0), name="workspace_memory_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"

    @property
    def resources(self) -> Resources:
        return Resources(cpu=format_cpu(self.cpu_millis), memory=format_memory(self.memory_bytes), gpu=self.gpu)

    @property
    def grant_label(self) -> str:
        """How the workspace's grants name it (``workspace_label``)."""
        return f"{self.name} ({self.owner.get_username()})"[:200]

    def snapshot(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "owner": self.owner.get_username(),
            "project": self.project.name if self.project else None,
            "template": self.template.name,
            "resources": {
                "cpu": format_cpu(self.cpu_millis),
                "memory": format_memory(self.memory_bytes),
                "gpu": self.gpu,
            },
            "connector": self.connector,
            "desired_state": self.desired_state,
            "state": self.state,
        }


class WorkspaceDataset(models.Model):
    """A dataset the workspace was created with: the owner's grant it came from and the workspace's own grant.

    ``mounted``: in the workspace as the connector last accepted it. ``credentials`` (sealed with a key
    derived from ``SECRET_KEY``, see ``workspaces.credentials``) are kept so that retries and periodic
    passes give the connector the same spec; they are renewed before ``credentials_expire_at``.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="datasets")
    dataset = models.ForeignKey("catalog.Dataset", on_delete=models.CASCADE, related_name="+")
    source_grant = models.ForeignKey(
        "governance.Grant", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    grant = models.ForeignKey("governance.Grant", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    mounted = models.BooleanField(default=False)
    credentials = models.TextField(blank=True)
    credentials_expire_at = models.DateTimeField(null=True, blank=True)
    unmounted_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["workspace", "id"]
        constraints = [models.UniqueConstraint(fields=["workspace", "dataset"], name="workspace_dataset_once")]

    def __str__(self) -> str:
        return f"{self.dataset_id} in {self.workspace_id}"


class WorkspaceEvent(models.Model):
    """One thing that happened to a workspace: a request, a state transition, a mount change, an error.

    The same error seen again is counted (``repeats``, ``last_at``) rather than recorded twice.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=16, choices=EventKind.choices)
    from_state = models.CharField(max_length=16, blank=True)
    to_state = models.CharField(max_length=16, blank=True)
    message = models.TextField(blank=True)
    actor = models.CharField(max_length=150, blank=True, help_text="Who asked (a username), or blank: Steward.")
    repeats = models.PositiveIntegerField(default=1)
    last_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["workspace", "at"], name="workspace_event_time")]

    def __str__(self) -> str:
        return f"{self.workspace_id} {self.kind} {self.from_state}->{self.to_state}"
