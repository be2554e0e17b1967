"""Who may act for a workspace subject: asked of the app that owns workspaces (registered, not imported).

Governance does not import the workspaces app; workspaces registers its answer at start-up
(``steward.registry.registry.add_workspace_authority``). With none registered (a deployment without
workspaces), nobody may ask for a workspace.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from steward.registry import registry

__all__ = ["may_act_for_workspace"]


def may_act_for_workspace(user: Any, workspace_id: UUID) -> bool:
    return any(check(user, workspace_id) for check in registry.workspace_authorities)
