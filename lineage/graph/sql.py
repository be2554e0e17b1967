"""The ``sql`` graph backend: indexed level-by-level queries over the lineage tables (PostgreSQL and SQLite).

One query per hop (not one recursive query) so a walk can stop at its node limit: a recursive query has to
find everything within ``depth`` before it can count, which near a hub means the whole graph."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import connection
from django.db.models import Q

from lineage.graph.base import Expand, Walk, breadth_first
from lineage.models import ColumnEdge, Edge
from steward.lookups import UUIDs, uuid_array

__all__ = ["SqlGraphBackend"]

_CHUNK = 5_000  # datasets per IN list (SQLite allows 32,766 variables)


class SqlGraphBackend:
    is_projection = False

    def __init__(self, **options: Any) -> None:
        self.options = options

    def walk(self, *, root: UUID, direction: str, depth: int, columns: bool, at: datetime | None, limit: int) -> Walk:
        walk = Walk(root=root, datasets={root: 0})
        for way in ("downstream", "upstream") if direction == "both" else (direction,):
            near, far = ("source_id", "target_id") if way == "downstream" else ("target_id", "source_id")
            breadth_first(walk, way, depth, limit, self._expander(near, far, at))
        if columns and walk.edges:
            self._columns(walk, at)
        return walk

    def walk_from(self, *, roots: list[UUID], direction: str, depth: int, at: datetime | None, limit: int) -> Walk:
        """One walk from several datasets at once: every dataset within ``depth`` hops of any of them, at its least
        hops from the nearest, at most ``limit`` of them all together, one query per hop for all the roots.

        When it is not truncated, its datasets and edges are those of the walks from each root put together (each
        of those holds a part of it, so none was cut either): a reconstruction walks from every training input."""
        walk = Walk(root=roots[0], datasets=dict.fromkeys(roots, 0))
        for way in ("downstream", "upstream") if direction == "both" else (direction,):
            near, far = ("source_id", "target_id") if way == "downstream" else ("target_id", "source_id")
            breadth_first(walk, way, depth, limit, self._expander(near, far, at))
        return walk

    @staticmethod
    def _expander(near: str, far: str, at: datetime | None) -> Expand:
        active = (
            Q(valid_to__isnull=True)
            if at is None
            else Q(valid_from__lte=at) & (Q(valid_to__isnull=True) | Q(valid_to__gt=at))
        )

        def expand(
            frontier: list[UUID], only: list[UUID] | None, cap: int, room: tuple[set[UUID], int] | None = None
        ) -> tuple[list[tuple[UUID, UUID, UUID]], bool]:
            if connection.vendor == "postgresql" and len(frontier) <= _CHUNK:
                if room is not None:
                    return _expand_with_room(near, far, at, frontier, cap, *room)
                if only is not None:
                    return _expand_within(near, far, at, frontier, cap, only)
            rows: list[tuple[UUID, UUID, UUID]] = []
            more = False
            for start in range(0, len(frontier), _CHUNK):
                qs = Edge.objects.filter(active, **{f"{near}__any_of": UUIDs(frontier[start : start + _CHUNK])})
                if only is not None:
                    kept = UUIDs(only)
                    more = more or qs.exclude(**{f"{far}__any_of": kept}).exists()
                    qs = qs.filter(**{f"{far}__any_of": kept})
                rows += qs.values_list(near, far, "job_id")[: cap - len(rows)]
                if len(rows) >= cap:
                    break
            return rows, more

        return expand

    def _columns(self, walk: Walk, at: datetime | None) -> None:
        pairs = {(s, t, j) for s, t, j in walk.edges}
        sources = list({s for s, _, _ in pairs})
        qs = ColumnEdge.objects.filter(source_dataset_id__in=sources)
        qs = qs.filter(valid_to__isnull=True) if at is None else qs.filter(valid_from__lte=at).exclude(valid_to__lte=at)
        for s, sf, t, tf, j in qs.values_list(
            "source_dataset_id", "source_field", "target_dataset_id", "target_field", "job_id"
        ):
            if (s, t, j) in pairs:
                walk.column_edges.add((s, sf, t, tf, j))

    def sync_jobs(self, job_ids: Iterable[UUID]) -> None:
        return None

    def rebuild(self, progress: Callable[[int, int], None] | None = None) -> int:
        return 0

    def ping(self) -> None:
        return None


def _expand_with_room(
    near: str, far: str, at: datetime | None, frontier: list[UUID], cap: int, admitted: set[UUID], room: int
) -> tuple[list[tuple[UUID, UUID, UUID]], bool]:
    """One level's edges, in one query, without the edges towards new datasets the walk would not admit.

    The walk admits new datasets in id order until its limit: it needs the edges towards datasets already
    admitted, towards the ``room`` smallest new ids, and towards one more (which tells it the answer is cut).
    Near a hub this returns a few hundred rows instead of thousands (PostgreSQL compares uuids as the walk
    sorts them: by their 128-bit value)."""
    active = (
        "e.valid_to IS NULL" if at is None else "e.valid_from <= %(at)s AND (e.valid_to IS NULL OR e.valid_to > %(at)s)"
    )
    table = connection.ops.quote_name(Edge._meta.db_table)
    sql = f"""
        WITH level AS MATERIALIZED (
            SELECT e.{near} AS near, e.{far} AS far, e.job_id AS job FROM {table} e
            WHERE {active} AND e.{near} = ANY(%(frontier)s::uuid[]) LIMIT %(cap)s
        ), fresh AS (
            SELECT DISTINCT far FROM level WHERE NOT far = ANY(%(admitted)s::uuid[]) ORDER BY far LIMIT %(fresh)s
        )
        SELECT near, far, job, (SELECT count(*) FROM level) FROM level
        WHERE far = ANY(%(admitted)s::uuid[]) OR far IN (SELECT far FROM fresh)"""
    params: dict[str, Any] = {
        "frontier": uuid_array(frontier),
        "admitted": uuid_array(admitted),
        "fresh": max(room, 0) + 1,
        "cap": cap,
        "at": at,
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    # A level with ``cap`` edges or more was read only in part: the answer is cut (as in ``breadth_first``).
    return [(n, f, j) for n, f, j, _ in rows], bool(rows) and rows[0][3] >= cap


def _expand_within(
    near: str, far: str, at: datetime | None, frontier: list[UUID], cap: int, only: list[UUID]
) -> tuple[list[tuple[UUID, UUID, UUID]], bool]:
    """One level's edges towards datasets in ``only``, and whether any other edge leaves the frontier, in one
    query (once the walk is full: it looks only for edges between datasets it already holds)."""
    active = (
        "e.valid_to IS NULL" if at is None else "e.valid_from <= %(at)s AND (e.valid_to IS NULL OR e.valid_to > %(at)s)"
    )
    table = connection.ops.quote_name(Edge._meta.db_table)
    sql = f"""
        SELECT e.{near}, e.{far}, e.job_id, false FROM {table} e
        WHERE {active} AND e.{near} = ANY(%(frontier)s::uuid[]) AND e.{far} = ANY(%(only)s::uuid[])
        UNION ALL
        (SELECT NULL, NULL, NULL, true FROM {table} e
         WHERE {active} AND e.{near} = ANY(%(frontier)s::uuid[]) AND NOT e.{far} = ANY(%(only)s::uuid[]) LIMIT 1)"""
    with connection.cursor() as cursor:
        cursor.execute(sql, {"frontier": uuid_array(frontier), "only": uuid_array(only), "at": at})
        rows = cursor.fetchall()
    found = [(n, f, j) for n, f, j, other in rows if not other]
    return found[:cap], any(other for *_, other in rows)
