"""Workspace services: what users ask (lifecycle) and what the reconciler does (reconcile)."""

from workspaces.services.lifecycle import workspace_create, workspace_delete, workspace_start, workspace_stop
from workspaces.services.reconcile import (
    PassReport,
    workspace_grants_follow,
    workspace_reconcile,
    workspaces_due,
    workspaces_reconcile_due,
    workspaces_reconcile_many,
)

__all__ = [
    "PassReport",
    "workspace_create",
    "workspace_delete",
    "workspace_grants_follow",
    "workspace_reconcile",
    "workspace_start",
    "workspace_stop",
    "workspaces_due",
    "workspaces_reconcile_due",
    "workspaces_reconcile_many",
]
