"""The reconciler: drives each workspace to its desired state through its connector, recording every step.

``workspace_reconcile`` handles one workspace. It claims the workspace (a lease, so two reconcilers never
act on one workspace at once), computes the spec (mounts: the datasets whose workspace grant *and* owner's
grant are valid now, with their credentials), calls the connector, records what it observed as
transitions and events, and goes round again if someone changed the desired state meanwhile. No database
transaction is held while the connector works.

- Desired ``running``: ``apply`` when the workspace is not running yet or its mounts or credentials differ
  from what the connector last accepted (``applied_fingerprint``), else only ``status``. When every dataset
  it had mounted has lost its grant, the spec is applied once without them (their credentials leave the
  workspace) and Steward stops the workspace (its storage stays; the owner may start it again, without data).
- Desired ``stopped``: ``stop``. Desired ``deleted``: ``delete`` (its grants were revoked by the request).
- ``BackendUnavailable``: the state stays, the error is recorded once (repeats are counted), ``retry_at``
  backs off (10 s doubling to 5 min), and the error is raised again for the task to retry.
- ``WorkspaceConnectorError`` (a 4xx such as 409 or 422): the workspace is ``failed`` with the message
  until its owner asks again (``failed_version``: a failure is not retried for the same request).

``workspaces_reconcile_due`` is the periodic pass: one ``list_managed`` call, removal of workspaces the
connector runs that Steward no longer knows, and one task per batch of (100) workspaces that need work, found
with two queries over all workspaces (so a pass over 500 unchanged workspaces costs no per-workspace call).
``workspaces_reconcile_many`` reconciles a batch: one claim, the plans of all that need an ``apply`` with a
fixed number of queries, the applies on a small thread pool, and what they observed written with one
statement per table; anything else goes through ``workspace_reconcile``'s own steps.
"""

from workspaces.services.reconcile.due import PassReport, workspaces_due, workspaces_reconcile_due
from workspaces.services.reconcile.grants import workspace_grants_follow
from workspaces.services.reconcile.many import workspaces_reconcile_many
from workspaces.services.reconcile.one import workspace_reconcile

__all__ = [
    "PassReport",
    "workspace_grants_follow",
    "workspace_reconcile",
    "workspaces_due",
    "workspaces_reconcile_due",
    "workspaces_reconcile_many",
]
