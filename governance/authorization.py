"""Access decisions: the hot path. Read-only, and a fixed number of queries per batch.

A subject may ``read`` a dataset at time ``t`` exactly when one of its grants on that dataset has
``valid_from <= t < valid_until``, was not revoked at or before ``t``, and was not suspended at ``t``.
Times are compared here, at decision time, to the microsecond; no background task has to run first.

Queries per batch: subjects named by username (one, if any), datasets named by namespace and name (one, if
any), the grants of every (subject, dataset) pair at once (one, on the composite indexes ``grant_user_decision``
and ``grant_workspace_decision``), and suspension history (one, only when a past time ``at`` is asked).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from uuid import UUID

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import BooleanField, Model, Q
from django.db.models.expressions import RawSQL

from catalog.models import Dataset
from governance import decision_index
from governance.decision_index import DecisionIndex, GrantWindow
from governance.models import Grant, GrantSuspension
from steward.prepared import execute_prepared

__all__ = ["Decision", "DecisionQuery", "Reason", "decide_from_database", "decide_many"]


class Reason:
    """Why a decision came out as it did (the ``reason`` field of the API)."""

    GRANTED = "granted"
    NO_GRANT = "no_grant"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    REVOKED = "revoked"
    SUSPENDED = "suspended"
    UNKNOWN_SUBJECT = "unknown_subject"
    INACTIVE_SUBJECT = "inactive_subject"
    UNKNOWN_ASSET = "unknown_asset"


@dataclass(frozen=True, slots=True)
class DecisionQuery:
    """One question: may this subject do ``action`` on this dataset at ``at`` (``None``: the decision time)?

    The subject is exactly one of ``user_id``, ``username`` and ``workspace_id``; the asset is ``dataset_id``
    or ``(namespace, name)``.
    """

    action: str = "read"
    user_id: int | None = None
    username: str | None = None
    workspace_id: UUID | None = None
    dataset_id: UUID | None = None
    namespace: str | None = None
    name: str | None = None
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    decision: str
    reason: str
    grant_id: UUID | None = None
    expires_at: datetime | None = None
    # Resolved ids, for the audit of denials (not part of the API answer).
    user_id: int | None = None
    dataset_id: UUID | None = None

    @property
    def allowed(self) -> bool:
        return self.decision == "allow"


# A grant as a decision reads it (also what ``governance.decision_index`` keeps in memory).
_Row = GrantWindow


def _deny(
    reason: str, grant: _Row | None = None, *, user_id: int | None = None, dataset_id: UUID | None = None
) -> Decision:
    return Decision(
        "deny",
        reason,
        grant.id if grant else None,
        grant.valid_until if grant else None,
        user_id=user_id,
        dataset_id=dataset_id,
    )


def _pairs_filter(column: str, pairs: list[tuple[object, UUID]]) -> RawSQL:
    """``(column, dataset_id) IN (VALUES ...)`` (SQLite): one index probe per pair."""
    native = connection.features.has_native_uuid_field
    params: list[object] = []
    for subject, dataset in pairs:
        params.append(subject if native or not isinstance(subject, UUID) else subject.hex)
        params.append(dataset if native else dataset.hex)
    values = ", ".join(["(%s, %s)"] * len(pairs))
    table = connection.ops.quote_name(Grant._meta.db_table)
    return RawSQL(f"({table}.{column}, {table}.dataset_id) IN (VALUES {values})", params, output_field=BooleanField())


_COLUMNS = ("id", "dataset_id", "valid_from", "valid_until", "revoked_at", "suspended_at")


def _fetch_pairs(column: str, pairs: list[tuple[object, UUID]]) -> list[tuple]:
    """Grant rows ``(subject, id, dataset_id, valid_from, valid_until, revoked_at, suspended_at)`` of these pairs.

    On PostgreSQL the pairs travel as two arrays (two parameters, whatever the batch size), each pair probing the
    ``grant_user_decision`` / ``grant_workspace_decision`` index; elsewhere as a ``VALUES`` list.
    """
    if connection.vendor == "postgresql":
        kind = "bigint" if column == "user_id" else "uuid"
        # LATERAL with OFFSET 0 (which keeps the planner from flattening it into a hash join over the whole table)
        # makes it one index probe per pair: the cost follows the batch, not the size of the grant table.
        sql = (
            f"SELECT p.s, g.{', g.'.join(_COLUMNS)} FROM unnest(%s::{kind}[], %s::uuid[]) AS p(s, d) "
            f"CROSS JOIN LATERAL (SELECT {', '.join(_COLUMNS)} FROM {Grant._meta.db_table} "
            f"WHERE {column} = p.s AND dataset_id = p.d OFFSET 0) g"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [[p[0] for p in pairs], [p[1] for p in pairs]])
            return cursor.fetchall()
    subject = "user_id" if column == "user_id" else "workspace_id"
    return list(Grant.objects.filter(_pairs_filter(column, pairs)).order_by().values_list(subject, *_COLUMNS))


def _grants_for(
    user_pairs: set[tuple[int, UUID]], workspace_pairs: set[tuple[UUID, UUID]]
) -> dict[tuple[str, object, UUID], list[_Row]]:
    found: dict[tuple[str, object, UUID], list[_Row]] = defaultdict(list)
    for kind, column, pairs in (("user", "user_id", user_pairs), ("workspace", "workspace_id", workspace_pairs)):
        pair_list = list(pairs)
        for start in range(0, len(pair_list), 5000):
            for subject, gid, did, vf, vu, ra, sa in _fetch_pairs(column, pair_list[start : start + 5000]):
                found[(kind, subject, did)].append(_Row(gid, vf, vu, ra, sa))
    return found


def _suspended_at(grant_ids: list[UUID], times: set[datetime]) -> set[tuple[UUID, datetime]]:
    """Which (grant, time) pairs fall inside a recorded suspension."""
    if not grant_ids or not times:
        return set()
    earliest, latest = min(times), max(times)
    periods = GrantSuspension.objects.filter(grant_id__in=grant_ids, started_at__lte=latest).filter(
        Q(ended_at__isnull=True) | Q(ended_at__gt=earliest)
    )
    hit: set[tuple[UUID, datetime]] = set()
    for gid, start, end in periods.values_list("grant_id", "started_at", "ended_at"):
        for t in times:
            if start <= t and (end is None or t < end):
                hit.add((gid, t))
    return hit


def _resolve_orm(
    queries: list[DecisionQuery],
) -> tuple[list[tuple[int | None, bool | None, UUID | None]], dict[tuple[str, object, UUID], list[_Row]]]:
    """Subjects, named datasets, then the grants of every pair: three queries (the portable path)."""
    usernames = {q.username for q in queries if q.username is not None}
    user_ids = {q.user_id for q in queries if q.user_id is not None}
    users: dict[str, int] = {}
    active: dict[int, bool] = {}
    if usernames or user_ids:
        wanted = Q(username__in=usernames) if usernames else Q()
        if user_ids:
            wanted = (wanted | Q(pk__in=user_ids)) if usernames else Q(pk__in=user_ids)
        rows = get_user_model().objects.filter(wanted)
        for name, pk, is_active in rows.values_list("username", "pk", "is_active"):
            users[name] = pk
            active[pk] = is_active
    names = {(q.namespace, q.name) for q in queries if q.dataset_id is None and q.name is not None}
    datasets: dict[tuple[str | None, str | None], UUID] = {}
    if names:
        dataset_rows = Dataset.objects.filter(
            namespace__in={n for n, _ in names}, name__in={m for _, m in names}
        ).values_list("namespace", "name", "pk")
        datasets = {(ns, nm): pk for ns, nm, pk in dataset_rows if (ns, nm) in names}
    resolved: list[tuple[int | None, bool | None, UUID | None]] = []
    user_pairs: set[tuple[int, UUID]] = set()
    workspace_pairs: set[tuple[UUID, UUID]] = set()
    for q in queries:
        uid = q.user_id if q.username is None else users.get(q.username)
        dataset = q.dataset_id if q.dataset_id is not None else datasets.get((q.namespace, q.name))
        resolved.append((uid, active.get(uid) if uid is not None else None, dataset))
        if dataset is None:
            continue
        if q.workspace_id is not None:
            workspace_pairs.add((q.workspace_id, dataset))
        elif uid in active and active[uid]:
            user_pairs.add((uid, dataset))
    grants = _grants_for(user_pairs, workspace_pairs) if (user_pairs or workspace_pairs) else {}
    return resolved, grants


# One statement for a whole batch on PostgreSQL, prepared once per connection: the questions travel as parallel
# arrays; each row of ``q`` probes the unique indexes for its user (by name or id) and its dataset (by id, or by
# namespace and name), then the composite indexes ``grant_user_decision`` / ``grant_workspace_decision`` for the
# grants of the pair. Every lookup is a LATERAL index probe (OFFSET 0 keeps the planner from flattening the grant
# subquery into a scan of the table), so the cost follows the batch and the plan does not depend on its size.
_PG_DECIDE = """
SELECT q.i, coalesce(un.id, ui.id), coalesce(un.is_active, ui.is_active), coalesce(q.d, dn.id),
       g.id, g.valid_from, g.valid_until, g.revoked_at, g.suspended_at
FROM unnest(%s::bigint[], %s::text[], %s::uuid[], %s::uuid[], %s::text[], %s::text[])
     WITH ORDINALITY AS q(uid, uname, ws, d, ns, nm, i)
LEFT JOIN LATERAL (SELECT id, is_active FROM {user} WHERE username = q.uname) un ON true
LEFT JOIN LATERAL (SELECT id, is_active FROM {user} WHERE id = q.uid AND q.uname IS NULL) ui ON true
LEFT JOIN LATERAL (SELECT id FROM {dataset} WHERE namespace = q.ns AND name = q.nm AND q.d IS NULL) dn ON true
LEFT JOIN LATERAL (
    SELECT id, valid_from, valid_until, revoked_at, suspended_at FROM {grant}
    WHERE user_id = coalesce(un.id, ui.id) AND coalesce(un.is_active, ui.is_active) AND q.ws IS NULL
      AND dataset_id = coalesce(q.d, dn.id)
    UNION ALL
    SELECT id, valid_from, valid_until, revoked_at, suspended_at FROM {grant}
    WHERE workspace_id = q.ws AND dataset_id = coalesce(q.d, dn.id)
    OFFSET 0
) g ON true
"""


@cache
def _pg_decide_sql() -> str:
    quote = connection.ops.quote_name
    tables: dict[str, type[Model]] = {"user": get_user_model(), "dataset": Dataset, "grant": Grant}
    return _PG_DECIDE.format(**{k: quote(m._meta.db_table) for k, m in tables.items()})


def _resolve_postgresql(
    queries: list[DecisionQuery],
) -> tuple[list[tuple[int | None, bool | None, UUID | None]], dict[tuple[str, object, UUID], list[_Row]]]:
    """Subjects, datasets and grants of every question in one statement (``_PG_DECIDE``)."""
    columns: tuple[list, ...] = ([], [], [], [], [], [])
    for q in queries:
        for column, value in zip(
            columns, (q.user_id, q.username, q.workspace_id, q.dataset_id, q.namespace, q.name), strict=True
        ):
            column.append(value)
    resolved: list[tuple[int | None, bool | None, UUID | None]] = [(None, None, None)] * len(queries)
    grants: dict[tuple[str, object, UUID], list[_Row]] = defaultdict(list)
    rows = execute_prepared(_pg_decide_sql(), list(columns))
    for i, uid, is_active, dataset, gid, vf, vu, ra, sa in rows:
        q = queries[i - 1]
        resolved[i - 1] = (uid, is_active, dataset)
        if gid is not None:
            key = ("workspace", q.workspace_id, dataset) if q.workspace_id is not None else ("user", uid, dataset)
            grants[key].append(_Row(gid, vf, vu, ra, sa))
    return resolved, grants


def decide_many(queries: list[DecisionQuery], *, now: datetime) -> list[Decision]:
    """Decide every query, in order. ``now`` is the decision time for queries without ``at``.

    Only ``read`` is a privilege today; callers validate ``action`` before asking. From the process's
    ``governance.decision_index`` when it is current (one single-row read of the generation, or none when the
    request pinned it), for what it knows; the rest from the database: one statement on PostgreSQL (plus
    suspension history when ``at`` is asked), three queries elsewhere.
    """
    if not queries:
        return []
    index = decision_index.current()
    if index is None:
        return decide_from_database(queries, now=now)
    decisions: list[Decision | None] = []
    rest: list[int] = []
    for i, q in enumerate(queries):
        decision = _decide_from_index(index, q, now)
        if decision is None:
            rest.append(i)
        decisions.append(decision)
    if rest:
        for i, decision in zip(rest, decide_from_database([queries[i] for i in rest], now=now), strict=True):
            decisions[i] = decision
    return decisions  # type: ignore[return-value]


_NOT_SUSPENDED: set[tuple[UUID, datetime]] = set()


def _decide_from_index(index: DecisionIndex, q: DecisionQuery, now: datetime) -> Decision | None:
    """As ``decide_from_database`` decides ``q``, from memory; ``None`` when the index does not know enough
    (a past time, or a user or dataset name it lacks)."""
    if q.at is not None:
        return None
    uid: int | None = None
    if q.workspace_id is None:
        if q.username is not None:
            found = index.users.get(q.username)
            if found is None:
                return None
            uid, is_active = found
        else:
            uid = q.user_id
            known = index.active.get(uid) if uid is not None else None
            if known is None:
                return None
            is_active = known
    dataset = q.dataset_id
    if dataset is None:
        dataset = index.datasets.get((q.namespace, q.name))  # type: ignore[arg-type]
        if dataset is None:
            return None
    if q.workspace_id is not None:
        rows = index.grants.get(("workspace", q.workspace_id, dataset), ())
        return _decide(rows, now, past=False, suspended=_NOT_SUSPENDED, uid=None, dataset=dataset)
    if not is_active:
        return _deny(Reason.INACTIVE_SUBJECT, user_id=uid, dataset_id=dataset)
    rows = index.grants.get(("user", uid, dataset), ())
    return _decide(rows, now, past=False, suspended=_NOT_SUSPENDED, uid=uid, dataset=dataset)


def decide_from_database(queries: list[DecisionQuery], *, now: datetime) -> list[Decision]:
    """``decide_many`` without the index: every query read from the database."""
    if not queries:
        return []
    if connection.vendor == "postgresql":
        found, grants = _resolve_postgresql(queries)
    else:
        found, grants = _resolve_orm(queries)

    resolved: list[tuple[str, object, UUID] | Decision] = []
    for q, (uid, is_active, dataset) in zip(queries, found, strict=True):
        if q.workspace_id is None and is_active is None:
            resolved.append(_deny(Reason.UNKNOWN_SUBJECT, dataset_id=dataset))
        elif q.workspace_id is None and not is_active:
            resolved.append(_deny(Reason.INACTIVE_SUBJECT, user_id=uid, dataset_id=dataset))
        elif dataset is None:
            resolved.append(_deny(Reason.UNKNOWN_ASSET, user_id=uid if q.workspace_id is None else None))
        elif q.workspace_id is not None:
            resolved.append(("workspace", q.workspace_id, dataset))
        else:
            resolved.append(("user", uid, dataset))

    past_times = {q.at for q in queries if q.at is not None}
    suspended: set[tuple[UUID, datetime]] = set()
    if past_times and grants:
        candidates = [
            row.id
            for key, q in zip(resolved, queries, strict=True)
            if q.at is not None and isinstance(key, tuple)
            for row in grants.get(key, ())
            if row.valid_from <= q.at < row.valid_until
        ]
        suspended = _suspended_at(candidates, past_times)

    decisions: list[Decision] = []
    for key, q in zip(resolved, queries, strict=True):
        if isinstance(key, Decision):
            decisions.append(key)
            continue
        at = q.at or now
        uid = key[1] if key[0] == "user" and isinstance(key[1], int) else None
        decisions.append(
            _decide(grants.get(key, ()), at, past=q.at is not None, suspended=suspended, uid=uid, dataset=key[2])
        )
    return decisions


def _decide(
    rows: Iterable[_Row],
    at: datetime,
    *,
    past: bool,
    suspended: set[tuple[UUID, datetime]],
    uid: int | None,
    dataset: UUID,
) -> Decision:
    """One decision from the pair's grants: allow with the valid grant ending last, else the most telling denial.
    ``past``: ``at`` was asked for, so suspension comes from the recorded periods rather than the current flag."""
    best: _Row | None = None
    blocked: dict[str, _Row] = {}
    for row in rows:
        if at < row.valid_from:
            reason = Reason.NOT_YET_VALID
        elif at >= row.valid_until:
            reason = Reason.EXPIRED
        elif row.revoked_at is not None and row.revoked_at <= at:
            reason = Reason.REVOKED
        elif (row.id, at) in suspended if past else row.suspended_at is not None:
            reason = Reason.SUSPENDED
        else:
            if best is None or (row.valid_until, row.id) > (best.valid_until, best.id):
                best = row
            continue
        # Of several grants blocked for the same reason, name the one ending last (of those, the greatest id:
        # the answer does not depend on the order the rows come in).
        if reason not in blocked or (row.valid_until, row.id) > (blocked[reason].valid_until, blocked[reason].id):
            blocked[reason] = row
    if best is not None:
        return Decision("allow", Reason.GRANTED, best.id, best.valid_until, user_id=uid, dataset_id=dataset)
    for reason in (Reason.SUSPENDED, Reason.REVOKED, Reason.NOT_YET_VALID, Reason.EXPIRED):
        if reason in blocked:
            return _deny(reason, blocked[reason], user_id=uid, dataset_id=dataset)
    return _deny(Reason.NO_GRANT, user_id=uid, dataset_id=dataset)
