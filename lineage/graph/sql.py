"""The ``sql`` graph backend: recursive queries over the lineage tables (PostgreSQL and SQLite)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import connection, models

from lineage.graph.base import Walk
from lineage.models import ColumnEdge, Edge

__all__ = ["SqlGraphBackend"]

_UUID = models.UUIDField()


def _active(alias: str, at: datetime | None, params: list[Any]) -> str:
    if at is None:
        return f"{alias}.valid_to IS NULL"
    params += [at, at]
    return f"{alias}.valid_from <= %s AND ({alias}.valid_to IS NULL OR %s < {alias}.valid_to)"


def _uuid(value: Any) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


class SqlGraphBackend:
    is_projection = False

    def __init__(self, **options: Any) -> None:
        self.options = options

    def walk(self, *, root: UUID, direction: str, depth: int, columns: bool, at: datetime | None) -> Walk:
        walk = Walk(root=root, datasets={root: 0})
        for way in ("downstream", "upstream") if direction == "both" else (direction,):
            self._walk_one(walk, way, depth, at)
        if columns and walk.edges:
            self._columns(walk, at)
        return walk

    def _walk_one(self, walk: Walk, way: str, depth: int, at: datetime | None) -> None:
        edge = Edge._meta.db_table
        near, far = ("source_id", "target_id") if way == "downstream" else ("target_id", "source_id")
        params: list[Any] = [_UUID.get_db_prep_value(walk.root, connection), depth]
        step_active = _active("e", at, params)
        params.append(depth)
        final_active = _active("e", at, params)
        sql = f"""
            WITH RECURSIVE walk(id, depth) AS (
                SELECT %s, 0
                UNION
                SELECT e.{far}, w.depth + 1 FROM walk w JOIN {edge} e ON e.{near} = w.id
                WHERE w.depth < %s AND {step_active}
            ),
            reached AS (SELECT id, MIN(depth) AS depth FROM walk GROUP BY id)
            SELECT e.source_id, e.target_id, e.job_id, f.depth
            FROM {edge} e
            JOIN reached n ON n.id = e.{near} AND n.depth < %s
            JOIN reached f ON f.id = e.{far}
            WHERE {final_active}
        """
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            for source, target, job, far_depth in cursor.fetchall():
                s, t, j = _uuid(source), _uuid(target), _uuid(job)
                walk.edges.add((s, t, j))
                other = t if way == "downstream" else s
                if other not in walk.datasets or walk.datasets[other] > far_depth:
                    walk.datasets[other] = far_depth

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
