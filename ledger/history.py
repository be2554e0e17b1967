"""One history mechanism for every app: valid-time rows of each entity's state, read as of any instant.

An entity is ``(kind, key)``: ``("catalog.dataset", "<uuid>")``, ``("governance.grant", "<uuid>")``,
``("governance.policy", "current")``. Its rows in ``HistoryRecord`` tile its lifetime: a change closes the
open row at the change's time and opens one with the new state; a deletion opens a row with a null state.
So ``as_of(kind, key, t)`` is one index lookup, exact to the microsecond, whatever happened since.

How a change is recorded, inside the change's own transaction (like ``ledger.audit``):
- ``capture(kind, keys)``: the owning app registered a *loader* (``register(kind, loader)``) that reads
  the current states of many entities in a few queries; keys it does not return are deleted;
- ``write(kind, {key: state})``: the caller already has the states (bulk paths);
- ``write_shared(kind, [(state, keys)])``: many keys share a few states (a propagation re-levelling a region):
  each state is encoded once, and on PostgreSQL the rows are written set-based, whatever the number of keys.
Both skip entities whose state did not change (compared by the SHA-256 of the canonical JSON), so calling
them again is harmless, and ``drift(kind)`` tells whether the open rows still match the live tables.

Rows that are themselves intervals already (lineage edges, column edges, propagated tags, grants' windows)
use the same ``[valid_from, valid_to)`` convention and ``active_at``; they are not copied here.

Imports no other Steward app.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from django.db import connection, models, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from ledger.models import HistoryRecord
from steward.bulk import RawJson, insert_rows
from steward.canonical import canonical_text, digest_text, digests, legacy_digest

__all__ = [
    "active_at",
    "all_pks",
    "as_of",
    "as_of_each",
    "as_of_many",
    "capture",
    "capture_many",
    "changes_since",
    "changes_since_each",
    "drift",
    "first_recorded",
    "kinds",
    "register",
    "timeline",
    "write",
    "write_many",
    "write_shared",
]

Loader = Callable[[list[str]], Mapping[str, dict[str, Any]]]
_LOADERS: dict[str, Loader] = {}
_ALL_KEYS: dict[str, Callable[[], Iterable[str]]] = {}
_CHUNK = 5_000
_COLUMNS = ["kind", "key", "valid_from", "valid_to", "state", "digest"]
GONE = "0" * 64  # the digest of a deletion row (no state)


def register(kind: str, loader: Loader, all_keys: Callable[[], Iterable[str]]) -> None:
    """Declare how to read the current states of ``kind`` (``loader``) and list every live key
    (``all_keys``, for ``history_capture --all`` and ``drift``)."""
    _LOADERS[kind] = loader
    _ALL_KEYS[kind] = all_keys


def all_pks(model: type[models.Model]) -> Callable[[], Iterable[str]]:
    """An ``all_keys`` for ``register``: every primary key of ``model``, as text, streamed."""
    return lambda: (str(pk) for pk in model._default_manager.values_list("pk", flat=True).iterator())


def kinds() -> list[str]:
    return sorted(_LOADERS)


def all_keys(kind: str) -> Iterable[str]:
    return _ALL_KEYS[_known(kind)]()


def _known(kind: str) -> str:
    if kind not in _LOADERS:
        raise KeyError(f"no history loader registered for {kind!r}; known: {', '.join(kinds())}")
    return kind


def _chunks(keys: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(keys), _CHUNK):
        yield keys[start : start + _CHUNK]


def capture(kind: str, keys: Iterable[Any], *, at: datetime | None = None) -> int:
    """Record the current state of these entities (as the registered loader reads it) at ``at`` (now).

    Returns how many entities changed. Must run inside the transaction of the change.
    """
    loader = _LOADERS[_known(kind)]
    key_list = sorted({str(k) for k in keys})
    if not key_list:
        return 0
    states: dict[str, dict[str, Any] | None] = {}
    for chunk in _chunks(key_list):
        found = loader(chunk)
        for key in chunk:
            states[key] = found.get(key)
    return write(kind, states, at=at)


def capture_many(kinds: Iterable[str], keys: Iterable[Any], *, at: datetime | None = None) -> int:
    """``capture`` of several kinds of the same keys (a dataset and its level), sharing the reads and writes
    of history rows (one query for the open rows, one insert); returns how many entities changed."""
    key_list = sorted({str(k) for k in keys})
    if not key_list:
        return 0
    by_kind: dict[str, dict[str, dict[str, Any] | None]] = {}
    for kind in kinds:
        loader = _LOADERS[_known(kind)]
        states = by_kind.setdefault(kind, {})
        for chunk in _chunks(key_list):
            found = loader(chunk)
            for key in chunk:
                states[key] = found.get(key)
    return write_many(by_kind, at=at)


def write(kind: str, states: Mapping[Any, dict[str, Any] | None], *, at: datetime | None = None) -> int:
    """Record these states (``None``: the entity no longer exists) at ``at`` (now); returns how many changed.

    A state equal to the open row's is skipped. A second change at the very instant of the open row's start
    (two changes in one transaction) replaces that row rather than leaving an empty interval.
    """
    return write_many({kind: states}, at=at)


def write_many(
    by_kind: Mapping[str, Mapping[Any, dict[str, Any] | None]], *, at: datetime | None = None, fresh: bool = False
) -> int:
    """``write`` for several kinds at once (one query for their open rows, one insert).

    ``fresh``: the caller created every one of these entities in this transaction (new primary keys), so none has
    a row yet and the open rows are not read (a bulk create writes its first states in one statement)."""
    if not any(by_kind.values()):
        return 0
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("history.write must run inside the transaction of the change it records")
    when = at or timezone.now()
    encoded: dict[tuple[str, str], tuple[str | None, str, str | None]] = {}
    for kind, states in by_kind.items():
        for key, state in states.items():
            text = None if state is None else canonical_text(state)
            # An open row written before steward.canonical carries the legacy digest of non-ASCII states.
            legacy = None if text is None else legacy_digest(state, text)
            encoded[(kind, str(key))] = (text, GONE if text is None else digest_text(text), legacy)
    open_rows: dict[tuple[str, str], tuple[int, str, datetime]] = {}
    all_keys = sorted({key for _, key in encoded})
    for pk, kind, key, digest, valid_from in () if fresh else _open_rows(list(by_kind), all_keys):
        open_rows[(kind, key)] = (pk, digest, valid_from)
    to_close: list[int] = []
    to_replace: list[int] = []
    rows: list[list[Any]] = []
    for (kind, key), (text, digest, legacy) in encoded.items():
        current = open_rows.get((kind, key))
        if current is None:
            if text is None:
                continue  # never recorded, and gone: nothing to say
        elif current[1] == digest or current[1] == legacy:
            continue
        else:
            (to_replace if current[2] >= when else to_close).append(current[0])
        rows.append([kind, key, when, None, None if text is None else RawJson(text), digest])
    if not rows:
        return 0
    if connection.vendor == "postgresql":  # one array parameter per statement, however many rows
        table = connection.ops.quote_name(HistoryRecord._meta.db_table)
        with connection.cursor() as cursor:
            if to_replace:
                cursor.execute(f"DELETE FROM {table} WHERE id = ANY(%s::bigint[])", [to_replace])
            if to_close:
                cursor.execute(f"UPDATE {table} SET valid_to = %s WHERE id = ANY(%s::bigint[])", [when, to_close])
    else:
        for start in range(0, len(to_replace), _CHUNK):
            HistoryRecord.objects.filter(pk__in=to_replace[start : start + _CHUNK]).delete()
        for start in range(0, len(to_close), _CHUNK):
            HistoryRecord.objects.filter(pk__in=to_close[start : start + _CHUNK]).update(valid_to=when)
    insert_rows(HistoryRecord, _COLUMNS, rows)
    return len(rows)


def write_shared(
    kind: str, groups: Iterable[tuple[dict[str, Any], Iterable[Any]]], *, at: datetime | None = None
) -> int:
    """``write`` of states that many keys share: each ``(state, keys)`` records ``state`` for every key of ``keys``
    (e.g. one effective level for thousands of datasets); returns how many changed. Same rules as ``write``.

    Each state is encoded (canonical text, digest) once, not once per key. On PostgreSQL the new rows are one
    ``INSERT … SELECT`` over an array of keys and an array of indexes into the few states (no per-row formatting
    in Python); the open rows are read and closed by id arrays, as ``write`` does. Elsewhere it is ``write``.
    """
    states: list[dict[str, Any]] = []
    by_key: dict[str, int] = {}
    for state, keys in groups:
        index = len(states)
        states.append(state)
        for key in keys:
            by_key[str(key)] = index
    if not by_key:
        return 0
    if connection.vendor != "postgresql":
        return write(kind, {key: states[i] for key, i in by_key.items()}, at=at)
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("history.write must run inside the transaction of the change it records")
    when = at or timezone.now()
    texts = [canonical_text(state) for state in states]
    digests = [digest_text(text) for text in texts]
    # An open row written before steward.canonical carries the legacy digest of non-ASCII states.
    legacies = [legacy_digest(state, text) for state, text in zip(states, texts, strict=True)]
    to_close: list[int] = []
    to_replace: list[int] = []
    for pk, _, key, digest, valid_from in _open_rows([kind], list(by_key)):
        i = by_key[key]
        if digest == digests[i] or digest == legacies[i]:
            del by_key[key]  # unchanged: no row
        else:
            (to_replace if valid_from >= when else to_close).append(pk)
    if not by_key:
        return 0
    table = connection.ops.quote_name(HistoryRecord._meta.db_table)
    with connection.cursor() as cursor:
        if to_replace:  # opened at this very instant (two changes in one transaction): replaced, not closed
            cursor.execute(f"DELETE FROM {table} WHERE id = ANY(%s::bigint[])", [to_replace])
        if to_close:
            cursor.execute(f"UPDATE {table} SET valid_to = %s WHERE id = ANY(%s::bigint[])", [when, to_close])
        cursor.execute(
            f"""INSERT INTO {table} (kind, key, valid_from, valid_to, state, digest)
            SELECT %(kind)s, n.key, %(when)s, NULL, (%(states)s::jsonb[])[n.i], (%(digests)s::text[])[n.i]
            FROM unnest(%(keys)s::text[], %(which)s::int[]) AS n(key, i)""",
            {
                "kind": kind,
                "when": when,
                "keys": list(by_key),
                "which": [i + 1 for i in by_key.values()],  # SQL arrays count from 1
                "states": texts,
                "digests": digests,
            },
        )
    return len(by_key)


def _open_rows(kinds: list[str], keys: list[str]) -> Iterable[tuple[int, str, str, str, datetime]]:
    """(id, kind, key, digest, valid_from) of the open rows of these kinds and keys."""
    if connection.vendor == "postgresql":  # the keys as one text[] (no placeholder per key to build and split)
        table = connection.ops.quote_name(HistoryRecord._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id, kind, key, digest, valid_from FROM {table} WHERE kind = ANY(%s::text[])"
                " AND key = ANY(%s::text[]) AND valid_to IS NULL",
                [kinds, keys],
            )
            yield from cursor.fetchall()
        return
    for chunk in _chunks(keys):
        yield from HistoryRecord.objects.filter(kind__in=kinds, key__in=chunk, valid_to__isnull=True).values_list(
            "id", "kind", "key", "digest", "valid_from"
        )


def active_at(qs: QuerySet, at: datetime, *, start: str = "valid_from", end: str = "valid_to") -> QuerySet:
    """The rows of an interval table active at ``at``: ``start <= at`` and (``end`` null or ``at < end``)."""
    return qs.filter(Q(**{f"{start}__lte": at}) & (Q(**{f"{end}__isnull": True}) | Q(**{f"{end}__gt": at})))


def as_of(kind: str, key: Any, at: datetime) -> dict[str, Any] | None:
    """The state of ``(kind, key)`` at ``at``: None when it did not exist (yet, or any more)."""
    row = (
        HistoryRecord.objects.filter(kind=kind, key=str(key), valid_from__lte=at)
        .order_by("-valid_from")
        .values_list("state", "valid_to")
        .first()
    )
    if row is None or (row[1] is not None and row[1] <= at):
        return None
    return row[0]


def as_of_many(kind: str, keys: Iterable[Any], at: datetime) -> dict[str, dict[str, Any]]:
    """``as_of`` for many keys at once (one query per 5,000); entities absent at ``at`` are left out.

    Per key, the one row ``as_of`` reads: the last to start at or before ``at`` (a backward step on
    ``history_as_of``, whatever the number of earlier states), kept when it is still open at ``at``."""
    found: dict[str, dict[str, Any]] = {}
    table = connection.ops.quote_name(HistoryRecord._meta.db_table)
    for chunk in _chunks(sorted({str(k) for k in keys})):
        if connection.vendor != "postgresql":
            qs = active_at(HistoryRecord.objects.filter(kind=kind, key__in=chunk), at)
            found.update((key, state) for key, state in qs.values_list("key", "state") if state is not None)
            continue
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT k.key, h.state FROM unnest(%s::text[]) AS k(key) CROSS JOIN LATERAL ("
                f"SELECT state, valid_to FROM {table} h WHERE h.kind = %s AND h.key = k.key AND h.valid_from <= %s"
                " ORDER BY h.valid_from DESC LIMIT 1) h"
                " WHERE h.state IS NOT NULL AND (h.valid_to IS NULL OR h.valid_to > %s)",
                [chunk, kind, at, at],
            )
            for key, state in cursor.fetchall():
                found[key] = json.loads(state) if isinstance(state, str) else state
    return found


Lookup = tuple[str, str, datetime]  # (kind, key, at)


def as_of_each(lookups: Iterable[tuple[str, Any, datetime]]) -> dict[Lookup, dict[str, Any]]:
    """``as_of`` for any mix of kinds, keys and instants at once: the answer is keyed by ``(kind, str(key), at)``;
    lookups whose entity was absent at their instant are left out.

    On PostgreSQL one query per 5,000 lookups (the ``as_of_many`` backward step, per lookup, over arrays of kinds,
    keys and instants); elsewhere one ``as_of_many`` per kind and instant. A reconstruction asks for a model
    version, its model and deployments at one instant, and for every input at two: one round trip each."""
    wanted = sorted({(kind, str(key), at) for kind, key, at in lookups})
    found: dict[Lookup, dict[str, Any]] = {}
    if not wanted:
        return found
    if connection.vendor != "postgresql":
        groups: dict[tuple[str, datetime], list[str]] = {}
        for kind, key, at in wanted:
            groups.setdefault((kind, at), []).append(key)
        for (kind, at), keys in groups.items():
            found.update(((kind, key, at), state) for key, state in as_of_many(kind, keys, at).items())
        return found
    table = connection.ops.quote_name(HistoryRecord._meta.db_table)
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT k.ord, h.state FROM unnest(%s::text[], %s::text[], %s::timestamptz[])"
                " WITH ORDINALITY AS k(kind, key, at, ord) CROSS JOIN LATERAL ("
                f"SELECT state, valid_to FROM {table} h WHERE h.kind = k.kind AND h.key = k.key"
                " AND h.valid_from <= k.at ORDER BY h.valid_from DESC LIMIT 1) h"
                " WHERE h.state IS NOT NULL AND (h.valid_to IS NULL OR h.valid_to > k.at)",
                [[w[0] for w in chunk], [w[1] for w in chunk], [w[2] for w in chunk]],
            )
            for ordinal, state in cursor.fetchall():
                found[chunk[ordinal - 1]] = json.loads(state) if isinstance(state, str) else state
    return found


Change = tuple[datetime, dict[str, Any] | None]  # (valid_from, state; None: deleted)


def changes_since_each(kinds_keys: Mapping[str, Iterable[Any]], at: datetime) -> dict[str, dict[str, list[Change]]]:
    """``changes_since`` for several kinds in one query: ``{kind: {key: [(valid_from, state), ...]}}``, each key's
    changes oldest first; every kind asked is in the answer, keys that did not change are not."""
    q = Q()
    for kind, keys in kinds_keys.items():
        key_list = sorted({str(k) for k in keys})
        for chunk in _chunks(key_list):
            q |= Q(kind=kind, key__in=chunk)
    changed: dict[str, dict[str, list[Change]]] = {kind: {} for kind in kinds_keys}
    if not q:
        return changed
    rows = (
        HistoryRecord.objects.filter(q, valid_from__gt=at)
        .order_by("kind", "key", "valid_from")
        .values_list("kind", "key", "valid_from", "state")
    )
    for kind, key, valid_from, state in rows:
        changed[kind].setdefault(key, []).append((valid_from, state))
    return changed


def first_recorded(kind: str, key: Any) -> datetime | None:
    """When history of ``(kind, key)`` begins (the entity may have existed before it was recorded); None: never."""
    return (
        HistoryRecord.objects.filter(kind=kind, key=str(key))
        .order_by("valid_from")
        .values_list("valid_from", flat=True)
        .first()
    )


def timeline(kind: str, key: Any) -> list[HistoryRecord]:
    """Every recorded state of one entity, oldest first."""
    return list(HistoryRecord.objects.filter(kind=kind, key=str(key)).order_by("valid_from"))


def changes_since(kind: str, keys: Iterable[Any], at: datetime) -> dict[str, list[HistoryRecord]]:
    """For each key, the rows that started after ``at`` (what changed since), oldest first."""
    changed: dict[str, list[HistoryRecord]] = {}
    for chunk in _chunks(sorted({str(k) for k in keys})):
        for row in HistoryRecord.objects.filter(kind=kind, key__in=chunk, valid_from__gt=at).order_by(
            "key", "valid_from"
        ):
            changed.setdefault(row.key, []).append(row)
    return changed


def drift(kind: str, keys: Iterable[Any] | None = None) -> list[str]:
    """Keys whose open history row does not match what the loader reads now (a write that skipped history).

    Empty when history is complete. ``keys`` defaults to every live entity and every open row of ``kind``.
    """
    loader = _LOADERS[_known(kind)]
    if keys is None:
        open_keys = HistoryRecord.objects.filter(kind=kind, valid_to__isnull=True).exclude(digest=GONE)
        key_list = sorted({*map(str, all_keys(kind)), *open_keys.values_list("key", flat=True)})
    else:
        key_list = sorted({str(k) for k in keys})
    wrong: list[str] = []
    for chunk in _chunks(key_list):
        found = loader(chunk)
        recorded = dict(
            HistoryRecord.objects.filter(kind=kind, key__in=chunk, valid_to__isnull=True).values_list("key", "digest")
        )
        for key in chunk:
            state = found.get(key)
            expected = (GONE,) if state is None else digests(state)
            if recorded.get(key, GONE) not in expected:
                wrong.append(key)
    return wrong
