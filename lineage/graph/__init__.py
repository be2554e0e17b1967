"""Lineage graph queries through a pluggable backend (``STEWARD_GRAPH_BACKEND``: sql | neo4j)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING
from uuid import UUID

from django.db import transaction

from steward.backends import load_backend

if TYPE_CHECKING:
    from lineage.graph.base import GraphBackend

__all__ = ["get_backend", "sync_later"]

logger = logging.getLogger(__name__)


def get_backend() -> GraphBackend:
    return load_backend("graph")


def sync_later(job_ids: Iterable[UUID]) -> None:
    """After commit, queue projection of these jobs' edges (a no-op for the ``sql`` backend)."""
    ids = sorted(str(j) for j in job_ids)
    if not ids or not get_backend().is_projection:
        return

    def enqueue() -> None:
        from lineage.tasks import graph_sync_task

        for start in range(0, len(ids), 500):
            try:
                graph_sync_task.delay(ids[start : start + 500])
            except Exception:
                logger.warning("could not queue graph sync; run manage.py graph_rebuild", exc_info=True)

    transaction.on_commit(enqueue)
