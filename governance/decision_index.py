"""What decisions read, kept in each process's memory, trusted only while nothing it depends on has changed.

A process keeps one ``DecisionIndex``: every grant's window (``valid_from``, ``valid_until``, ``revoked_at``,
``suspended_at``) by (subject, dataset), users by name and id with their activity, and the datasets that grants
name, by namespace and name. It is tagged with the decision generation (``governance.models.generation``), a
counter PostgreSQL triggers move in the same transaction as any change to those rows. Before a decision trusts
the index it reads the generation (one prepared single-row SELECT run by libpq directly; the decision API's
fast path reads it back once per request, after deciding, in the same statement as the audit append of the
denials: ``assumed_generation``/``confirm``); a different value means the index is stale and the decision goes
to the database. So a change is seen by the very next decision that starts after it commits,
in every process, exactly as without the index.

Decisions still compare times at decision time: the index holds windows, never answers, so a grant is never
valid outside its window whether or not anything was invalidated. What the index does not know it does not
guess: a username, user id or dataset name it lacks (a user or dataset created since it was built), or a
question about a past time ``at`` (which reads suspension history), goes to the database.

A stale index is rebuilt (``STEWARD_DECISION_INDEX``): ``background`` (the default) in a thread of its own while
decisions go to the database meanwhile, at most half of the time (a rebuild starts no sooner after the last one
than that one took); ``inline`` in the calling thread (tests, one-off scripts); ``off`` never. The index is used
only outside a transaction, so what it was built from and the generation it was checked against are committed:
an answer from memory is never one a rolled-back change produced. PostgreSQL only; elsewhere every decision reads
the database.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from psycopg.pq import ExecStatus, TransactionStatus

from catalog.models import Dataset
from governance.models import DecisionGeneration, Grant
from steward.prepared import execute_prepared

__all__ = [
    "DecisionIndex",
    "GenerationMoved",
    "GrantWindow",
    "assumed",
    "assumed_generation",
    "confirm",
    "current",
    "generation",
    "installed_generation",
    "pinned_generation",
    "read_generation",
]

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class GrantWindow:
    """One grant as a decision reads it."""

    id: UUID
    valid_from: datetime
    valid_until: datetime
    revoked_at: datetime | None
    suspended_at: datetime | None


# (kind, subject, dataset): kind "user" (subject a user id) or "workspace" (subject a workspace id).
PairKey = tuple[str, object, UUID]


@dataclass(slots=True)
class DecisionIndex:
    generation: int
    users: dict[str, tuple[int, bool]]  # username -> (id, is_active)
    active: dict[int, bool]  # user id -> is_active
    datasets: dict[tuple[str, str], UUID]  # (namespace, name) -> id, for datasets some grant names
    grants: dict[PairKey, tuple[GrantWindow, ...]]
    built_in_s: float = 0.0


# --- the generation ----------------------------------------------------------------------------------------------

_REQUEST_GENERATION: ContextVar[int | None] = ContextVar("decision_generation", default=None)
# True while the request's generation is the one the process's index was built at, not yet read back (``confirm``).
_ASSUMED: ContextVar[bool] = ContextVar("decision_generation_assumed", default=False)
# The generation read as a server-side prepared statement of its own name, run by libpq directly (no cursor): the
# read every decision makes costs about a third of the CPU it took through a cursor.
_STATEMENT = b"steward_decision_generation"


class GenerationMoved(Exception):
    """The generation a request assumed (``assumed_generation``) had moved when ``confirm`` read it back."""


def _usable(db: BaseDatabaseWrapper | None = None) -> bool:
    db = db or connections[DEFAULT_DB_ALIAS]
    return db.vendor == "postgresql" and settings.STEWARD_DECISION_INDEX != "off" and not db.in_atomic_block


@cache
def _generation_sql() -> str:
    return f"SELECT value FROM {connection.ops.quote_name(DecisionGeneration._meta.db_table)} WHERE id = 1"


def read_generation() -> int | None:
    """The committed decision generation, or ``None`` where nothing may be trusted from memory (not PostgreSQL,
    the index turned off, or inside a transaction, which may hold uncommitted changes of its own)."""
    db = connections[DEFAULT_DB_ALIAS]
    if not _usable(db):
        return None
    if not db.queries_logged:  # while queries are logged (DEBUG, tests counting them) through Django's cursor
        if db.connection is None:
            db.ensure_connection()
        pgconn = db.connection.pgconn
        if pgconn.transaction_status == TransactionStatus.IDLE:
            if db.__dict__.get("_steward_generation_on") is not pgconn:
                if pgconn.prepare(_STATEMENT, _generation_sql().encode()).status != ExecStatus.COMMAND_OK:
                    return _read_generation_by_cursor()
                db.__dict__["_steward_generation_on"] = pgconn
            result = pgconn.exec_prepared(_STATEMENT, None, result_format=1)
            if result.status == ExecStatus.TUPLES_OK and result.ntuples == 1:
                return int.from_bytes(result.get_value(0, 0) or b"", "big", signed=True)
            db.__dict__.pop("_steward_generation_on", None)  # whatever failed, the cursor's way reports it
    return _read_generation_by_cursor()


def _read_generation_by_cursor() -> int | None:
    row = execute_prepared(_generation_sql(), [], fetch="one")
    return None if row is None else row[0]


@contextmanager
def pinned_generation() -> Iterator[int | None]:
    """Read the generation once for a request: what the block checks against memory uses this one value."""
    value = read_generation()
    token = _REQUEST_GENERATION.set(value)
    try:
        yield value
    finally:
        _REQUEST_GENERATION.reset(token)


def installed_generation() -> int | None:
    """The generation of the index this process holds, current or not; ``None`` without one or where memory may
    not be trusted at all."""
    index = _state["index"]
    return index.generation if isinstance(index, DecisionIndex) and _usable() else None


@contextmanager
def assumed_generation(value: int) -> Iterator[None]:
    """Answer a request as though ``value`` (``installed_generation``) were the committed generation, without
    reading it first: what the block decides from memory is checked once at its end by ``confirm``, which reads
    the generation back (with the audit append of the denials, in the same statement) and raises
    ``GenerationMoved`` if it is not ``value`` any more; the caller then answers again the sure way
    (``pinned_generation``). The read back comes after the request started, so a change committed before it
    started is never missed: invalidation stays exact, with one round trip per request instead of two."""
    token, assumed = _REQUEST_GENERATION.set(value), _ASSUMED.set(True)
    try:
        yield
    finally:
        _ASSUMED.reset(assumed)
        _REQUEST_GENERATION.reset(token)


def assumed() -> bool:
    """Whether this request's generation is assumed and not yet confirmed."""
    return _ASSUMED.get()


def confirm(append: tuple[str, list[Any]] | None = None) -> bool:
    """Check an assumed generation (``assumed_generation``); elsewhere do nothing and return ``False``.

    ``append`` is an SQL expression and its parameters (``ledger.audit.alone_call``): it is evaluated in the same
    statement only when the generation is the assumed one, so nothing is written for an answer that is then
    given again. Returns whether it ran; raises ``GenerationMoved``."""
    if not _ASSUMED.get():
        return False
    assumed = _REQUEST_GENERATION.get()
    if append is None:
        value, ran = read_generation(), False
    else:
        expression, params = append
        sql = _generation_sql().replace(" FROM ", f", CASE WHEN value = %s::bigint THEN {expression} END FROM ", 1)
        row = execute_prepared(sql, [assumed, *params], fetch="one")
        value, ran = (None if row is None else row[0]), True
    if value != assumed:
        raise GenerationMoved
    _ASSUMED.set(False)
    return ran


def generation() -> int | None:
    """The request's pinned (or assumed) generation, else a fresh read."""
    pinned = _REQUEST_GENERATION.get()
    if pinned is not None and _usable():
        return pinned
    return read_generation()


# --- building ----------------------------------------------------------------------------------------------------


def build() -> DecisionIndex | None:
    """Read everything the index holds; ``None`` if the generation moved while reading (each statement saw a
    committed state, and with no change committed between the first read and the last they all saw the same)."""
    before = read_generation()
    if before is None:
        return None
    started = time.perf_counter()
    quote = connection.ops.quote_name
    user_model = get_user_model()
    user_table, grant_table = quote(user_model._meta.db_table), quote(Grant._meta.db_table)
    dataset_table = quote(Dataset._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, username, is_active FROM {user_table}")
        user_rows = cursor.fetchall()
        cursor.execute(
            f"SELECT d.id, d.namespace, d.name FROM {dataset_table} d "
            f"WHERE EXISTS (SELECT 1 FROM {grant_table} g WHERE g.dataset_id = d.id)"
        )
        dataset_rows = cursor.fetchall()
        cursor.execute(
            f"SELECT user_id, workspace_id, dataset_id, id, valid_from, valid_until, revoked_at, suspended_at "
            f"FROM {grant_table}"
        )
        grant_rows = cursor.fetchall()
    if read_generation() != before:
        return None
    users = {name: (pk, is_active) for pk, name, is_active in user_rows}
    active = {pk: is_active for pk, _, is_active in user_rows}
    datasets = {(ns, nm): pk for pk, ns, nm in dataset_rows}
    pairs: dict[PairKey, list[GrantWindow]] = {}
    for uid, ws, did, gid, vf, vu, ra, sa in grant_rows:
        key: PairKey = ("user", uid, did) if uid is not None else ("workspace", ws, did)
        window = GrantWindow(gid, vf, vu, ra, sa)
        found = pairs.get(key)
        if found is None:
            pairs[key] = [window]
        else:
            found.append(window)
    grants = {key: tuple(rows) for key, rows in pairs.items()}
    return DecisionIndex(before, users, active, datasets, grants, round(time.perf_counter() - started, 3))


# --- the process's index -----------------------------------------------------------------------------------------

_lock = threading.Lock()
_state: dict[str, object] = {"index": None, "building": False, "not_before": 0.0}


def _rebuild_in_background() -> None:
    try:
        _install(build())
    except Exception:  # the database path keeps answering; the next stale check tries again
        logger.exception("decision index rebuild failed")
    finally:
        connection.close()
        with _lock:
            _state["building"] = False


def _install(index: DecisionIndex | None) -> None:
    with _lock:
        if index is not None:
            _state["index"] = index
            # Rebuilding at most half of the time, however often grants change.
            _state["not_before"] = time.monotonic() + index.built_in_s


def current() -> DecisionIndex | None:
    """The index if it is current for this request's generation, else ``None`` (and a rebuild is started)."""
    wanted = generation()
    if wanted is None:
        return None
    index = _state["index"]
    if isinstance(index, DecisionIndex) and index.generation == wanted:
        return index
    if settings.STEWARD_DECISION_INDEX == "inline":
        built = build()
        _install(built)
        return built if built is not None and built.generation == wanted else None
    with _lock:
        if _state["building"] or time.monotonic() < float(_state["not_before"]):  # type: ignore[arg-type]
            return None
        _state["building"] = True
    threading.Thread(target=_rebuild_in_background, name="decision-index", daemon=True).start()
    return None


def forget() -> None:
    """Drop the process's index (tests)."""
    with _lock:
        _state.update(index=None, building=False, not_before=0.0)
