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

__all__ = ["DIRECTIONS", "GraphBackend", "Walk", "breadth_first"]

DIRECTIONS = ("upstream", "downstream", "both")


@dataclass
class Walk:
    root: UUID
    datasets: dict[UUID, int] = field(default_factory=dict)  # dataset id -> hops from the root
    edges: set[tuple[UUID, UUID, UUID]] = field(default_factory=set)  # (source, target, job)
    column_edges: set[tuple[UUID, str, UUID, str, UUID]] = field(default_factory=set)  # (s, sf, t, tf, job)
    #: True when ``limit`` cut the walk short: more datasets lie within ``depth`` than were returned.
    truncated: bool = False


#: expand(frontier, only, cap, room) -> ([(near, far, job)], more): active edges leaving ``frontier`` in the
#: walk's direction, at most ``cap``; when ``only`` is given, just those towards datasets in it, and ``more``
#: says whether any other edge leaves the frontier. ``room`` = (admitted, n), when given, lets a backend leave
#: out edges towards new datasets beyond the ``n + 1`` smallest ids not in ``admitted`` (the walk admits the
#: ``n`` smallest and only needs to know that one more exists); a backend may also ignore it.
Expand = Callable[
    [list[UUID], list[UUID] | None, int, "tuple[set[UUID], int] | None"],
    tuple[Iterable[tuple[UUID, UUID, UUID]], bool],
]


def breadth_first(walk: Walk, way: str, depth: int, limit: int, expand: Expand) -> None:
    """Walk level by level from ``walk.root``; at most ``limit`` datasets in ``walk`` (both directions together).

    Each dataset is expanded once, at its least hop. Within a level, datasets are admitted in id order, so a
    truncated answer is the same every time. Once the limit is reached, a level only looks for edges between
    datasets already admitted, so the work stays proportional to ``limit``, not to the size of the graph.
    Every dataset already in ``walk`` at hop 0 is a root too (``GraphBackend.walk_from``: several at once).
    """
    starts = sorted({walk.root, *(d for d, hop in walk.datasets.items() if hop == 0)}, key=lambda d: d.int)
    hops: dict[UUID, int] = dict.fromkeys(starts, 0)
    admitted = set(walk.datasets) | {walk.root}  # both directions count towards the limit
    frontier = starts
    cap = max(20 * limit, 10_000)
    for level in range(depth):
        if not frontier:
            break
        only = list(admitted) if len(admitted) >= limit else None
        found, more = expand(frontier, only, cap, None if only is not None else (admitted, limit - len(admitted)))
        rows = list(found)
        if only is None and len(admitted) + len(rows) > limit:  # the limit may cut this level: admit in id order
            rows.sort(key=lambda r: r[1].int)
        if more or len(rows) >= cap:
            walk.truncated = True
        following: list[UUID] = []
        for near, far, job in rows:
            if far not in hops:
                if far not in admitted:
                    if len(admitted) >= limit:
                        walk.truncated = True
                        continue
                    admitted.add(far)
                hops[far] = level + 1
                following.append(far)
            walk.edges.add((near, far, job) if way == "downstream" else (far, near, job))
        frontier = following
    for dataset, hop in hops.items():
        if walk.datasets.get(dataset, hop + 1) > hop:
            walk.datasets[dataset] = hop


class GraphBackend(Protocol):
    #: True when the backend keeps its own copy of the graph that ``sync_jobs`` must update.
    is_projection: bool

    def walk(self, *, root: UUID, direction: str, depth: int, columns: bool, at: datetime | None, limit: int) -> Walk:
        """Datasets within ``depth`` hops of ``root`` over edges active at ``at`` (now when ``None``), at most
        ``limit`` of them (nearest first; ``Walk.truncated`` says when more were left out)."""
        ...

    def walk_from(self, *, roots: list[UUID], direction: str, depth: int, at: datetime | None, limit: int) -> Walk:
        """One walk from several datasets at once (no column edges): every dataset within ``depth`` hops of any of
        them, at its least hops from the nearest, at most ``limit`` of them all together. Not truncated, it is the
        union of the walks from each root (a reconstruction walks from every training input)."""
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
