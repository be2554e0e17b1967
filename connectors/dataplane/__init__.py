"""Data-plane enforcement through a pluggable connector (``STEWARD_DATAPLANE_CONNECTOR``: postgres).

The governance side describes each grant as a :class:`DataGrant` and calls ``get_connector().apply(grant)``
for credentials, ``remove_later(grant_id)`` inside its revoking transaction, and provides the desired grants
for the periodic reconcile through ``STEWARD_DATAPLANE_GRANTS_SELECTOR`` (see ``connectors.services``).
"""

from __future__ import annotations

from uuid import UUID

from connectors.dataplane.base import (
    Credentials,
    DataGrant,
    DataPlaneConnector,
    DataPlaneError,
    DatasetNotManaged,
    GrantExpired,
    ReconcileReport,
)
from steward.backends import load_backend
from steward.tasks import enqueue_on_commit

__all__ = [
    "Credentials",
    "DataGrant",
    "DataPlaneConnector",
    "DataPlaneError",
    "DatasetNotManaged",
    "GrantExpired",
    "ReconcileReport",
    "get_connector",
    "remove_later",
]


def get_connector() -> DataPlaneConnector:
    return load_backend("dataplane")


def remove_later(grant_id: UUID) -> None:
    """After commit, queue removal of the grant's data-plane access (revocation, suspension).

    If the broker is down the periodic reconcile removes it instead, since the grant is no longer desired.
    """

    from connectors.tasks import dataplane_remove_task

    enqueue_on_commit(
        dataplane_remove_task, str(grant_id), recovery=f"reconcile will remove the access of grant {grant_id}."
    )
