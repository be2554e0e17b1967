"""Choices for workspace records: observed and desired states, event kinds."""

from __future__ import annotations

from django.db import models

__all__ = ["DesiredState", "EventKind", "WorkspaceState"]


class WorkspaceState(models.TextChoices):
    """What Steward last observed: requested → provisioning → running → stopping → stopped → deleted, or failed.

    The connector states of ``connectors.workspaces.base.WorkspaceState`` plus ``requested`` (not applied yet).
    """

    REQUESTED = "requested", "Requested"
    PROVISIONING = "provisioning", "Provisioning"
    RUNNING = "running", "Running"
    STOPPING = "stopping", "Stopping"
    STOPPED = "stopped", "Stopped"
    DELETED = "deleted", "Deleted"
    FAILED = "failed", "Failed"


class DesiredState(models.TextChoices):
    """What the owner asked for; the reconciler drives the observed state towards it."""

    RUNNING = "running", "Running"
    STOPPED = "stopped", "Stopped"
    DELETED = "deleted", "Deleted"


class EventKind(models.TextChoices):
    """``request``: someone asked for a change; ``transition``: the state changed; ``mounts``: datasets were
    mounted or removed; ``error``: the connector could not be reached (repeats are counted, not duplicated)."""

    REQUEST = "request", "Request"
    TRANSITION = "transition", "Transition"
    MOUNTS = "mounts", "Mounts"
    ERROR = "error", "Error"
