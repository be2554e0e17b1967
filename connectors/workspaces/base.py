"""The workspace connector protocol: what the reconciler asks of whatever runs workspaces.

A connector turns a ``WorkspaceSpec`` (who, which template, how much compute, which datasets with which
credentials) into a running workspace and reports what it observes as a ``WorkspaceStatus``. Every
operation is idempotent and keyed by the workspace id, so a reconciler can call it again after any failure:
``apply`` creates or updates (and starts a stopped workspace), ``stop`` keeps the workspace's storage and
releases its compute, ``delete`` removes what ``apply`` made for the workspace, ``status`` reads the current
state, ``list_managed`` finds every workspace the connector manages (orphans included).

Credentials live only in ``DataMount.credentials``: a connector hands them to the workspace (a Secret, an
environment) and never logs them. ``apply`` with fewer mounts than before removes the dropped datasets'
credentials from the workspace: that is how grant expiry and revocation reach a running workspace.

Errors: ``steward.errors.BackendUnavailable`` when the target cannot be reached or fails transiently (retry
with backoff); ``WorkspaceConnectorError`` when the target refuses the workspace as asked (invalid
resources, a conflict): retrying the same spec will not help, so the workspace shows the error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol
from uuid import UUID

from steward.errors import DomainError, FieldProblem

__all__ = [
    "DataMount",
    "Resources",
    "TemplateSpec",
    "WorkspaceConnector",
    "WorkspaceConnectorError",
    "WorkspaceSpec",
    "WorkspaceState",
    "WorkspaceStatus",
]


@dataclass(frozen=True)
class Resources:
    """Compute for one workspace: ``cpu`` and ``memory`` are Kubernetes quantities ("500m", "2", "4Gi")."""

    cpu: str
    memory: str
    gpu: int = 0


@dataclass(frozen=True)
class TemplateSpec:
    """A workspace template (jupyter-cpu, jupyter-gpu, vscode, ...): data, not code.

    ``command`` empty means the image's own entry point. ``local_command`` is what the ``local`` connector runs
    when its program is installed (placeholders ``{host}``, ``{port}``, ``{home}``, ``{token}``, ``{python}``);
    container connectors ignore it.
    """

    name: str
    image: str
    command: list[str] = field(default_factory=list)
    default_resources: Resources = field(default_factory=lambda: Resources(cpu="1", memory="2Gi"))
    local_command: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DataMount:
    """One dataset made available in a workspace, under the grant that allows it.

    ``credentials`` are what the workspace needs to read the dataset (e.g. ``{"user": ..., "password": ...}``);
    ``valid_until`` is when the grant ends (``None``: until revoked); the connector passes it on for the
    workspace's information, while removing expired mounts is the reconciler's job.
    """

    dataset_namespace: str
    dataset_name: str
    grant_id: UUID
    credentials: dict[str, str]
    valid_until: datetime | None = None

    def document(self) -> dict[str, Any]:
        """What the workspace reads for this dataset (a Secret key's JSON, a file, an environment entry)."""
        return {
            "dataset": {"namespace": self.dataset_namespace, "name": self.dataset_name},
            "grant_id": str(self.grant_id),
            "valid_until": self.valid_until.isoformat() if self.valid_until else None,
            "credentials": self.credentials,
        }


@dataclass(frozen=True, kw_only=True)
class WorkspaceSpec:
    """The desired workspace. ``project`` set: it lives in the project's space rather than the owner's.

    ``resources`` ``None`` means the template's ``default_resources``. Keyword-only.
    """

    id: UUID
    owner: str
    project: str | None = None
    template: TemplateSpec
    resources: Resources | None = None
    mounts: list[DataMount] = field(default_factory=list)

    @property
    def effective_resources(self) -> Resources:
        return self.resources or self.template.default_resources


class WorkspaceState(StrEnum):
    """What a connector observes (the workspace model adds ``requested`` before the first apply)."""

    PROVISIONING = "provisioning"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    DELETED = "deleted"
    FAILED = "failed"


@dataclass(frozen=True)
class WorkspaceStatus:
    """Observed state; ``url`` is where the user opens the workspace, ``message`` says why (errors, waits)."""

    state: WorkspaceState
    url: str | None = None
    message: str = ""


class WorkspaceConnectorError(DomainError):
    """The target refused the workspace as specified (invalid, conflicting or forbidden); not transient.

    ``problems`` name the offending fields where the target said which; ``target_status`` is the target's
    own status code (HTTP for Kubernetes) when it has one.
    """

    status = 400
    code = "workspace_rejected"

    def __init__(
        self, message: str, *, problems: list[FieldProblem] | None = None, target_status: int | None = None
    ) -> None:
        super().__init__(message, problems=problems)
        self.target_status = target_status


class WorkspaceConnector(Protocol):
    """Runs workspaces somewhere (``STEWARD_WORKSPACE_CONNECTOR``); every method is idempotent."""

    def apply(self, spec: WorkspaceSpec) -> WorkspaceStatus:
        """Create or update the workspace to match ``spec`` and make it run (starts a stopped one)."""
        ...

    def stop(self, workspace_id: UUID) -> WorkspaceStatus:
        """Release the workspace's compute, keeping its storage; a missing workspace reports ``deleted``."""
        ...

    def delete(self, workspace_id: UUID) -> None:
        """Remove the workspace, its storage and its credentials; deleting a missing one is not an error."""
        ...

    def status(self, workspace_id: UUID) -> WorkspaceStatus:
        """The workspace's observed state (``deleted`` when the connector has nothing for this id)."""
        ...

    def list_managed(self) -> dict[UUID, WorkspaceStatus]:
        """Every workspace this connector manages, by id (the reconciler cleans up ones Steward forgot)."""
        ...

    def ping(self) -> None:
        """Raise ``BackendUnavailable`` when the target cannot be reached (for ``/readyz``)."""
        ...
