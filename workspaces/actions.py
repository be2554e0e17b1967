"""Audit actions written by workspaces, registered with ``ledger.actions``."""

from __future__ import annotations

from ledger.actions import register

__all__ = ["WORKSPACE_CREATE", "WORKSPACE_DELETE", "WORKSPACE_START", "WORKSPACE_STOP"]

WORKSPACE_CREATE = register("workspaces.workspace.create", "{actor} created workspace {target}")
WORKSPACE_STOP = register("workspaces.workspace.stop", "{actor} stopped workspace {target}")
WORKSPACE_START = register("workspaces.workspace.start", "{actor} started workspace {target}")
WORKSPACE_DELETE = register("workspaces.workspace.delete", "{actor} deleted workspace {target}")
