"""What decisions read, kept in each process's memory, trusted only while nothing it depends on has changed.

A process keeps one ``DecisionIndex``: every grant's window (``valid_from``, ``valid_until``, ``revoked_at``,
``suspended_at``) by (subject, dataset), users by name and id with their activity, and the datasets that grants
name, by namespace and name. It is tagged with the decision generation (``governance.models.generation``), a
counter PostgreSQL triggers move in the same transaction as any change to those rows. Before a decision trusts
the index it reads the generation (one prepared single-row SELECT; the decision API's fast path reads it once
per request for the token check and the decisions together); a different value means the index is stale and
the decision goes to the database. So a change is seen by the very next decision that starts after it commits,
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
from uuid import UUID

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection

from catalog.models import Dataset
from governance.models import DecisionGeneration, Grant
from steward.prepared import execute_prepared

__all__ = ["DecisionIndex", "GrantWindow", "current", "generation", "pinned_generation", "read_generation"]

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


def _usable() -> bool:
    return (
        connection.vendor == "postgresql"
        and settings.STEWARD_DECISION_INDEX != "off"
        and not connection.in_atomic_block
    )


def read_generation() -> int | None:
    """The committed decision generation, or ``None`` where nothing may be trusted from memory (not PostgreSQL,
    the index turned off, or inside a transaction, which may hold uncommitted changes of its own)."""
    if not _usable():
        return None
    table = connection.ops.quote_name(DecisionGeneration._meta.db_table)
    row = execute_prepared(f"SELECT value FROM {table} WHERE id = 1", [], fetch="one")
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


def generation() -> int | None:
    """The request's pinned generation, else a fresh read."""
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
