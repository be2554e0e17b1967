"""Workspaces through a pluggable connector (``STEWARD_WORKSPACE_CONNECTOR``: local | kubernetes)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from steward.backends import load_backend

if TYPE_CHECKING:
    from connectors.workspaces.base import WorkspaceConnector

__all__ = ["get_connector"]


def get_connector() -> WorkspaceConnector:
    """The configured connector (built on first use and cached; see ``steward.backends``)."""
    return load_backend("workspace")
