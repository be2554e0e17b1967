"""The ``neo4j`` graph backend: a projection of every lineage edge interval into Neo4j, walked breadth-first.

Projection model (the database stays the source of truth; this is a copy ``sync_jobs`` keeps in step):

- ``(:Dataset {id})`` — one node per dataset that appears in an edge; ``id`` is the catalog UUID as text
  (uniqueness constraint ``steward_dataset_id``).
- ``(:Dataset)-[:FLOWS {job, valid_from, valid_to}]->(:Dataset)`` — one relationship per ``Edge`` row, every
  interval (not only the open ones), so ``at=`` walks need no database; ``job`` is the job UUID as text.
- ``(:Dataset)-[:COLUMN_FLOWS {job, source_field, target_field, valid_from, valid_to}]->(:Dataset)`` — one
  relationship per ``ColumnEdge`` row, between the two datasets, the columns as properties (no column
  nodes): a walk only wants the column edges along the dataset edges it walked, and these sit in the same
  adjacency lists.
- ``(:Job {id, synced_at})`` — one node per synced job, with no relationships: the lock a sync takes first,
  so two syncs of one job run one after the other and the later one reads the newer database state.
- Times are integer microseconds since the Unix epoch (UTC): exact, so the interval boundaries compare as
  in SQL (active at ``t``: ``valid_from <= t < valid_to``); ``valid_to`` null = open.
- Range indexes on ``FLOWS.job`` and ``COLUMN_FLOWS.job``: a sync finds a job's relationships without a scan.
  Constraints and indexes are created on first use (``IF NOT EXISTS``).

``walk`` is a level-by-level breadth-first search, one Cypher query per level that UNWINDs the frontier
(variable-length patterns enumerate paths, which explodes on hubs); it follows the ``sql`` backend's rule
exactly (see ``lineage.graph.sql``). Connectivity errors surface as ``BackendUnavailable`` (the sync task
retries on it; ingestion never waits for Neo4j). No retry loop hides an outage: a call fails within about
twice ``connection_timeout`` (one immediate retry covers a pooled connection gone stale); deadlocks between
concurrent syncs are retried a few times. Options (``STEWARD_GRAPH_OPTIONS``): ``url``, ``user`` (blank: no
authentication), ``password``, and optionally ``database`` and ``connection_timeout`` (seconds, default 5).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

from neo4j import READ_ACCESS, WRITE_ACCESS, Driver, GraphDatabase, Transaction
from neo4j.exceptions import (
    DatabaseUnavailable,
    DriverError,
    Neo4jError,
    ServiceUnavailable,
    SessionExpired,
    TransientError,
)

from lineage.graph.base import Walk, breadth_first
from lineage.models import ColumnEdge, Edge, Job
from steward import metrics
from steward.errors import BackendUnavailable

__all__ = ["Neo4jGraphBackend"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Errors that mean "Neo4j cannot be reached right now".
_UNREACHABLE = (ServiceUnavailable, SessionExpired, DatabaseUnavailable, OSError)
_JOB_BATCH = 500  # jobs per sync transaction (rebuild and large syncs)
_ROW_BATCH = 10_000  # rows per UNWIND
_TRANSIENT_ATTEMPTS = 5  # deadlocks and lock timeouts between concurrent syncs

_SCHEMA = (
    "CREATE CONSTRAINT steward_dataset_id IF NOT EXISTS FOR (d:Dataset) REQUIRE d.id IS UNIQUE",
    "CREATE CONSTRAINT steward_job_id IF NOT EXISTS FOR (j:Job) REQUIRE j.id IS UNIQUE",
    "CREATE INDEX steward_flows_job IF NOT EXISTS FOR ()-[r:FLOWS]-() ON (r.job)",
    "CREATE INDEX steward_column_flows_job IF NOT EXISTS FOR ()-[r:COLUMN_FLOWS]-() ON (r.job)",
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(value: datetime) -> int:
    """Microseconds since the epoch (exact integer arithmetic; naive times are taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _micros_or_none(value: datetime | None) -> int | None:
    return None if value is None else _micros(value)


def _active(alias: str, at: int | None) -> str:
    if at is None:
        return f"{alias}.valid_to IS NULL"
    return f"{alias}.valid_from <= $at AND ({alias}.valid_to IS NULL OR $at < {alias}.valid_to)"


def _chunks(rows: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


class Neo4jGraphBackend:
    is_projection = True

    def __init__(
        self,
        *,
        url: str = "bolt://127.0.0.1:7687",
        user: str = "",
        password: str = "",
        database: str | None = None,
        connection_timeout: float = 5.0,
    ) -> None:
        self.url = url
        self.user = user
        self.password = password
        self.database = database or None
        self.connection_timeout = connection_timeout
        self._driver: Driver | None = None
        self._pid = 0
        self._lock = threading.Lock()
        self._schema_ready = False

    # --- connection --------------------------------------------------------------------------------
    def _get_driver(self) -> Driver:
        """One driver per process, created on first use (a driver inherited through fork is not reused)."""
        if self._driver is None or self._pid != os.getpid():
            with self._lock:
                if self._driver is None or self._pid != os.getpid():
                    self._driver = GraphDatabase.driver(
                        self.url,
                        auth=(self.user, self.password) if self.user else None,
                        connection_timeout=self.connection_timeout,
                        connection_acquisition_timeout=max(10.0, 2 * self.connection_timeout),
                        liveness_check_timeout=30.0,
                        max_connection_lifetime=1800,
                    )
                    self._pid = os.getpid()
        return self._driver

    def close(self) -> None:
        """Close the driver (tests; a process exit does it anyway)."""
        with self._lock:
            if self._driver is not None and self._pid == os.getpid():
                self._driver.close()
            self._driver = None

    @contextmanager
    def _unavailable(self) -> Iterator[None]:
        try:
            yield
        except _UNREACHABLE as exc:
            metrics.backend_error("graph", "neo4j")
            raise BackendUnavailable(f"Neo4j at {self.url} is unreachable: {exc}") from exc

    def _run(self, work: Callable[..., T], *args: Any, write: bool) -> T:
        """Run ``work(tx, *args)`` in one transaction and commit it.

        Deadlocks and other transient errors are retried a few times with backoff (then reported as
        ``BackendUnavailable``, so a sync task retries later); a connectivity error is retried once at once
        (a pooled connection the server dropped) and then raised as ``BackendUnavailable``. ``work`` must be
        safe to run again (every caller here is idempotent).
        """
        mode = WRITE_ACCESS if write else READ_ACCESS
        attempt = 0
        while True:
            attempt += 1
            try:
                with self._unavailable():
                    with self._get_driver().session(database=self.database, default_access_mode=mode) as session:
                        with session.begin_transaction() as tx:
                            result = work(tx, *args)
                            tx.commit()
                            return result
            except BackendUnavailable:
                if attempt >= 2:
                    raise
                logger.info("neo4j connection failed; retrying once", exc_info=True)
            except TransientError as exc:
                if attempt >= _TRANSIENT_ATTEMPTS:
                    metrics.backend_error("graph", "neo4j")
                    raise BackendUnavailable(f"Neo4j at {self.url} kept failing: {exc}") from exc
                time.sleep(min(2.0, 0.05 * 2**attempt))

    def _ensure_schema(self) -> None:
        if self._schema_ready:
            return
        with self._unavailable():  # auto-commit queries: the driver's managed retries would hide an outage
            with self._get_driver().session(database=self.database) as session:
                for statement in _SCHEMA:  # schema changes cannot share a transaction with data writes
                    session.run(statement).consume()
                session.run("CALL db.awaitIndexes(300)").consume()
        self._schema_ready = True

    def ping(self) -> None:
        try:
            self._get_driver().verify_connectivity()
        except (DriverError, Neo4jError, OSError) as exc:
            metrics.backend_error("graph", "neo4j")
            raise BackendUnavailable(f"Neo4j at {self.url} is unreachable: {exc}") from exc

    # --- reads -------------------------------------------------------------------------------------
    def walk(self, *, root: UUID, direction: str, depth: int, columns: bool, at: datetime | None, limit: int) -> Walk:
        # Read-only: the schema is made by the first sync (before it, there is nothing to find anyway).
        return self._run(self._walk, [root], direction, depth, columns, _micros_or_none(at), limit, write=False)

    def walk_from(self, *, roots: list[UUID], direction: str, depth: int, at: datetime | None, limit: int) -> Walk:
        return self._run(self._walk, roots, direction, depth, False, _micros_or_none(at), limit, write=False)

    def _walk(
        self, tx: Transaction, roots: list[UUID], direction: str, depth: int, columns: bool, at: int | None, limit: int
    ) -> Walk:
        """From one root, or several at once (every dataset at hop 0 is a root of ``breadth_first``)."""
        walk = Walk(root=roots[0], datasets=dict.fromkeys(roots, 0))
        uuids: dict[str, UUID] = {str(r): r for r in roots}

        def as_uuid(text: str) -> UUID:
            found = uuids.get(text)
            if found is None:
                found = uuids[text] = UUID(text)
            return found

        for way in ("downstream", "upstream") if direction == "both" else (direction,):
            self._walk_one(tx, walk, way, depth, at, limit, as_uuid)
        if columns and walk.edges:
            self._columns(tx, walk, at, as_uuid)
        return walk

    def _walk_one(
        self,
        tx: Transaction,
        walk: Walk,
        way: str,
        depth: int,
        at: int | None,
        limit: int,
        as_uuid: Callable[[str], UUID],
    ) -> None:
        """Breadth-first (``breadth_first``): one query per level, its edges as three parallel lists."""
        pattern = "-[r:FLOWS]->" if way == "downstream" else "<-[r:FLOWS]-"
        # One record per level (the near end as its index in the frontier): decoding thousands of small
        # records is what costs most in the Python driver.
        query = (
            f"UNWIND range(0, size($frontier) - 1) AS i MATCH (:Dataset {{id: $frontier[i]}}){pattern}(far) "
            f"WHERE {_active('r', at)} AND ($only IS NULL OR far.id IN $only) WITH i, far, r LIMIT $cap "
            "RETURN collect(i) AS near, collect(far.id) AS far, collect(r.job) AS job"
        )
        beyond = (
            f"UNWIND $frontier AS id MATCH (:Dataset {{id: id}}){pattern}(far) "
            f"WHERE {_active('r', at)} AND NOT far.id IN $only RETURN count(*) > 0 LIMIT 1"
        )

        def expand(
            frontier: list[UUID], only: list[UUID] | None, cap: int, room: tuple[set[UUID], int] | None = None
        ) -> tuple[list[tuple[UUID, UUID, UUID]], bool]:
            ids = [str(d) for d in frontier]
            kept = None if only is None else [str(d) for d in only]
            nears, fars, jobs = tx.run(query, frontier=ids, at=at, cap=cap, only=kept).single(strict=True)
            more = kept is not None and tx.run(beyond, frontier=ids, at=at, only=kept).single(strict=True)[0]
            return [(frontier[i], as_uuid(f), as_uuid(j)) for i, f, j in zip(nears, fars, jobs, strict=True)], more

        breadth_first(walk, way, depth, limit, expand)

    def _columns(self, tx: Transaction, walk: Walk, at: int | None, as_uuid: Callable[[str], UUID]) -> None:
        query = (
            "UNWIND $edges AS e MATCH (:Dataset {id: e[0]})-[c:COLUMN_FLOWS]->(:Dataset {id: e[1]}) "
            f"WHERE c.job = e[2] AND {_active('c', at)} "
            "RETURN collect(e[0]), collect(c.source_field), collect(e[1]), collect(c.target_field), collect(e[2])"
        )
        edges = sorted([str(s), str(t), str(j)] for s, t, j in walk.edges)
        for chunk in _chunks(edges, _ROW_BATCH):
            record = tx.run(query, edges=list(chunk), at=at).single(strict=True)
            for s, sf, t, tf, j in zip(*record.values(), strict=True):
                walk.column_edges.add((as_uuid(s), sf, as_uuid(t), tf, as_uuid(j)))

    # --- writes ------------------------------------------------------------------------------------
    def sync_jobs(self, job_ids: Iterable[UUID]) -> None:
        ids = sorted({str(j) for j in job_ids})
        if not ids:
            return
        self._ensure_schema()
        for chunk in _chunks(ids, _JOB_BATCH):
            self._run(self._sync, list(chunk), write=True)

    def _sync(self, tx: Transaction, job_ids: list[str]) -> int:
        """Replace these jobs' relationships by their database rows; returns the dataset edges written."""
        # Lock the jobs first (sorted: no deadlock between two syncs), then read the database: a sync that
        # waited for another one reads at least as new a state as that one did.
        tx.run("UNWIND $ids AS id MERGE (j:Job {id: id}) SET j.synced_at = timestamp()", ids=job_ids).consume()
        edges: list[list[Any]] = [
            [str(s), str(t), str(j), _micros(vf), _micros_or_none(vt)]
            for s, t, j, vf, vt in Edge.objects.filter(job_id__in=job_ids).values_list(
                "source_id", "target_id", "job_id", "valid_from", "valid_to"
            )
        ]
        columns: list[list[Any]] = [
            [str(s), sf, str(t), tf, str(j), _micros(vf), _micros_or_none(vt)]
            for s, sf, t, tf, j, vf, vt in ColumnEdge.objects.filter(job_id__in=job_ids).values_list(
                "source_dataset_id",
                "source_field",
                "target_dataset_id",
                "target_field",
                "job_id",
                "valid_from",
                "valid_to",
            )
        ]
        for rel in ("FLOWS", "COLUMN_FLOWS"):
            tx.run(f"UNWIND $ids AS id MATCH ()-[r:{rel}]->() WHERE r.job = id DELETE r", ids=job_ids).consume()
        datasets = sorted(
            {e[0] for e in edges} | {e[1] for e in edges} | {c[0] for c in columns} | {c[2] for c in columns}
        )
        for ids in _chunks(datasets, _ROW_BATCH):
            tx.run("UNWIND $ids AS id MERGE (:Dataset {id: id})", ids=list(ids)).consume()
        for rows in _chunks(edges, _ROW_BATCH):
            tx.run(
                "UNWIND $rows AS row MATCH (s:Dataset {id: row[0]}) MATCH (t:Dataset {id: row[1]}) "
                "CREATE (s)-[:FLOWS {job: row[2], valid_from: row[3], valid_to: row[4]}]->(t)",
                rows=list(rows),
            ).consume()
        for rows in _chunks(columns, _ROW_BATCH):
            tx.run(
                "UNWIND $rows AS row MATCH (s:Dataset {id: row[0]}) MATCH (t:Dataset {id: row[2]}) "
                "CREATE (s)-[:COLUMN_FLOWS {source_field: row[1], target_field: row[3], job: row[4], "
                "valid_from: row[5], valid_to: row[6]}]->(t)",
                rows=list(rows),
            ).consume()
        return len(edges)

    def rebuild(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Wipe the projection and project every job again, ``_JOB_BATCH`` jobs per transaction.

        Walks during a rebuild see a partial graph; syncs running meanwhile are safe (each replaces whole jobs).
        """
        self._ensure_schema()
        self._wipe()
        total = Job.objects.count()
        done = written = 0
        if progress:
            progress(0, total)
        last: UUID | None = None
        while True:
            qs = Job.objects.order_by("pk")
            if last is not None:
                qs = qs.filter(pk__gt=last)
            batch = list(qs.values_list("pk", flat=True)[:_JOB_BATCH])
            if not batch:
                break
            written += self._run(self._sync, [str(pk) for pk in batch], write=True)
            done += len(batch)
            last = batch[-1]
            if progress:
                progress(done, max(total, done))
        return written

    def _wipe(self) -> None:
        """Delete the projection in bounded transactions (relationships first: a hub may have millions)."""

        def delete_some(tx: Transaction, query: str) -> int:
            return tx.run(query, limit=_ROW_BATCH).single(strict=True)[0]

        for query in (
            "MATCH ()-[r:FLOWS]->() WITH r LIMIT $limit DELETE r RETURN count(*)",
            "MATCH ()-[r:COLUMN_FLOWS]->() WITH r LIMIT $limit DELETE r RETURN count(*)",
            "MATCH (n:Dataset) WITH n LIMIT $limit DETACH DELETE n RETURN count(*)",
            "MATCH (n:Job) WITH n LIMIT $limit DETACH DELETE n RETURN count(*)",
        ):
            while self._run(delete_some, query, write=True):
                pass
