"""Lineage graph queries through a pluggable backend (``STEWARD_GRAPH_BACKEND``: sql | neo4j)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING
from uuid import UUID

from steward.backends import load_backend
from steward.tasks import enqueue_each_on_commit

if TYPE_CHECKING:
    from lineage.graph.base import GraphBackend

__all__ = ["get_backend", "sync_later"]


def get_backend() -> GraphBackend:
    return load_backend("graph")


def sync_later(job_ids: Iterable[UUID]) -> None:
    """After commit, queue projection of these jobs' edges (a no-op for the ``sql`` backend)."""
    ids = sorted(str(j) for j in job_ids)
    if not ids or not get_backend().is_projection:
        return

    from lineage.tasks import graph_sync_task

    enqueue_each_on_commit(
        graph_sync_task,
        ((ids[start : start + 500],) for start in range(0, len(ids), 500)),
        recovery="run manage.py graph_rebuild once the broker is back.",
    )
