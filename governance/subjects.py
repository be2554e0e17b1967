"""Who may act for a workspace subject: asked of the app that owns workspaces (registered, not imported).

Governance does not import the workspaces app; it registers a function at start-up
(``register_workspace_authority``). With none registered (a deployment without workspaces), nobody may ask
for a workspace.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

__all__ = ["may_act_for_workspace", "register_workspace_authority"]

_authority: list[Callable[[Any, UUID], bool]] = []


def register_workspace_authority(check: Callable[[Any, UUID], bool]) -> None:
    """``check(user, workspace_id)``: whether the user may ask for grants on behalf of that workspace."""
    if check not in _authority:
        _authority.append(check)


def may_act_for_workspace(user: Any, workspace_id: UUID) -> bool:
    return any(check(user, workspace_id) for check in _authority)
