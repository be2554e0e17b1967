"""How workspaces hear about grant changes (``governance.signals.grant_changed``, sent after commit), and tell
governance who may act for a workspace."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from governance.choices import GrantChange
from steward.tasks import enqueue_on_commit


def on_grant_changed(*, grant_ids: list[UUID], change: str, **_: Any) -> None:
    """Revoked, suspended, resumed or expired grants may change what workspaces mount: queue the follow-up.

    Created grants change nothing here (a workspace's own grants are mounted by the reconcile its creation
    queues). The periodic pass catches up if this announcement is lost.
    """
    if change == GrantChange.CREATED or not grant_ids:
        return
    from workspaces.tasks import workspace_grants_changed_task

    # Sent after commit: this queues at once. A lost message is caught up by the periodic workspace pass.
    enqueue_on_commit(
        workspace_grants_changed_task,
        [str(g) for g in grant_ids],
        recovery="the periodic workspace reconcile will catch up.",
    )


def may_act_for(user: Any, workspace_id: UUID) -> bool:
    """The owner and admins of a workspace not deleted may ask for grants on its behalf."""
    from workspaces.choices import DesiredState
    from workspaces.models import Workspace
    from workspaces.selectors import can_manage

    workspace = Workspace.objects.filter(pk=workspace_id).exclude(desired_state=DesiredState.DELETED).first()
    return workspace is not None and can_manage(user, workspace)
