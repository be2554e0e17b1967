"""Data-plane enforcement through a pluggable connector (``STEWARD_DATAPLANE_CONNECTOR``: postgres).

The governance side describes each grant as a :class:`DataGrant` and calls ``get_connector().apply(grant)``
for credentials, ``remove_later(grant_id)`` inside its revoking transaction, and provides the desired grants
for the periodic reconcile through ``STEWARD_DATAPLANE_GRANTS_SELECTOR`` (see ``connectors.services``).
"""

from __future__ import annotations

import logging
from uuid import UUID

from django.db import transaction

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

logger = logging.getLogger(__name__)


def get_connector() -> DataPlaneConnector:
    return load_backend("dataplane")


def remove_later(grant_id: UUID) -> None:
    """After commit, queue removal of the grant's data-plane access (revocation, suspension).

    If the broker is down the periodic reconcile removes it instead, since the grant is no longer desired.
    """

    def enqueue() -> None:
        from connectors.tasks import dataplane_remove_task

        try:
            dataplane_remove_task.delay(str(grant_id))
        except Exception:  # the broker is down: the next reconcile pass drops the role
            logger.exception("Could not queue data-plane removal of grant %s; reconcile will remove it.", grant_id)

    transaction.on_commit(enqueue)
