"""The graph backend protocol: walk lineage from a dataset, as of now or a past time.

Backends return structure only (dataset ids, edges, column edges); ``lineage.selectors`` adds names and
classifications from the database and drops what the caller may not see. Projections (Neo4j) are fed by
``sync_jobs`` from committed changes and rebuilt by ``manage.py graph_rebuild``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol
from uuid import UUID

__all__ = ["DIRECTIONS", "GraphBackend", "Walk"]

DIRECTIONS = ("upstream", "downstream", "both")


@dataclass
class Walk:
    root: UUID
    datasets: dict[UUID, int] = field(default_factory=dict)  # dataset id -> hops from the root
    edges: set[tuple[UUID, UUID, UUID]] = field(default_factory=set)  # (source, target, job)
    column_edges: set[tuple[UUID, str, UUID, str, UUID]] = field(default_factory=set)  # (s, sf, t, tf, job)


class GraphBackend(Protocol):
    #: True when the backend keeps its own copy of the graph that ``sync_jobs`` must update.
    is_projection: bool

    def walk(self, *, root: UUID, direction: str, depth: int, columns: bool, at: datetime | None) -> Walk:
        """Datasets within ``depth`` hops of ``root`` over edges active at ``at`` (now when ``None``)."""
        ...

    def sync_jobs(self, job_ids: Iterable[UUID]) -> None:
        """Make the projection of these jobs' edges (all intervals) equal to the database. Idempotent."""
        ...

    def rebuild(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Rebuild the whole projection from the database; returns the number of edges written."""
        ...

    def ping(self) -> None:
        """Raise ``BackendUnavailable`` when the engine cannot be reached."""
        ...
