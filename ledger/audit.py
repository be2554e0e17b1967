"""Record audit events (the one way history is written) and verify the hash chain.

Imports no other Steward app. Callers pass ``actor`` explicitly and call ``record`` inside their own
transaction, so the event commits or rolls back with the change it describes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from json.encoder import encode_basestring
from typing import Any

from django.db import connection, models, transaction
from django.utils import timezone

from ledger import actions
from ledger.models import AuditEvent, AuditHead
from steward.bulk import RawJson, concrete_field, insert_rows
from steward.canonical import canonical_text, digest_text, legacy_text
from steward.identity import Actor
from steward.middleware import current_request_id
from steward.prepared import execute_prepared

__all__ = [
    "GENESIS",
    "AuditEntry",
    "ChainWalk",
    "alone_call",
    "as_system",
    "canonical",
    "head_hash",
    "record",
    "record_alone",
    "record_many",
    "verify",
    "walk",
]

GENESIS = "0" * 64
AUDIT_COLUMNS = [
    "at",
    "actor_id",
    "actor_name",
    "action",
    "target_type",
    "target_id",
    "target_repr",
    "request_id",
    "before",
    "after",
    "reason",
    "prev_hash",
    "hash",
]


@dataclass
class AuditEntry:
    """What one event says, before it is chained."""

    action: str
    target_type: str = ""
    target_id: str = ""
    target_repr: str = ""
    before: Any = None
    after: Any = None
    reason: str = ""


# What audit hashes and history digests cover: ``steward.canonical`` (kept under this name for callers).
canonical = canonical_text


def _digest(
    prev_hash: str,
    event: AuditEvent,
    before: str | None = None,
    after: str | None = None,
    *,
    form: Callable[[Any], str] = canonical_text,
) -> str:
    """SHA-256 of the event's canonical JSON (``steward.canonical``). ``before``/``after``: their canonical
    JSON when the caller has it already (bulk paths serialise each value once). ``form``: ``legacy_text`` to
    recompute the hash of an event written before ``steward.canonical`` (non-ASCII escaped)."""
    parts = {
        "action": form(event.action),
        "actor_id": form(event.actor_id),
        "actor_name": form(event.actor_name),
        "after": form(event.after) if after is None else after,
        "at": form(event.at.isoformat()),
        "before": form(event.before) if before is None else before,
        "prev": form(prev_hash),
        "reason": form(event.reason),
        "request_id": form(event.request_id),
        "target_id": form(event.target_id),
        "target_repr": form(event.target_repr),
        "target_type": form(event.target_type),
    }
    text = "{" + ",".join(f'"{key}":{value}' for key, value in parts.items()) + "}"
    return digest_text(text)


def _digest_values(prev_hash: str, event: AuditEvent, before: Any, after: Any) -> str:
    """``_digest`` in one ``json.dumps``: the same canonical text (its keys are already in sorted order and
    nested values are dumped with sorted keys either way), without dumping each part on its own."""
    return digest_text(_canonical_event(prev_hash, event, before, after))


_AS_SYSTEM: ContextVar[str | None] = ContextVar("audit_as_system", default=None)


@contextmanager
def as_system(reason: str) -> Iterator[None]:
    """Everything recorded inside is the system's doing, whichever actor the services were given (a loader
    that drives the services with demo users' identities: the audit must not blame a real person);
    ``reason`` fills events that give none."""
    token = _AS_SYSTEM.set(reason)
    try:
        yield
    finally:
        _AS_SYSTEM.reset(token)


def record_many(*, actor: Actor | None, entries: Iterable[AuditEntry], at: datetime | None = None) -> list[AuditEvent]:
    """Append events in one go (bulk paths). Must run inside the caller's transaction."""
    entries = list(entries)
    if not entries:
        return []
    for entry in entries:
        actions.check(entry.action)
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit.record must run inside the transaction of the change it records")
    system_reason = _AS_SYSTEM.get()
    if system_reason is not None:
        actor = None
    prev = _lock_head()
    when = at or timezone.now()
    actor_id = getattr(actor, "pk", None)
    actor_name = getattr(actor, "username", "") or ("system" if actor is None else str(actor))
    rid = current_request_id()
    events = []
    for entry in entries:
        before = None if entry.before is None else canonical(entry.before)
        after = None if entry.after is None else canonical(entry.after)
        event = AuditEvent(
            at=when,
            actor_id=actor_id,
            actor_name=actor_name,
            action=entry.action,
            target_type=entry.target_type,
            target_id=str(entry.target_id),
            target_repr=entry.target_repr[:600],
            request_id="" if rid == "-" else rid,
            before=None if before is None else RawJson(before),
            after=None if after is None else RawJson(after),
            reason=entry.reason or system_reason or "",
            prev_hash=prev,
        )
        event.hash = _digest_values(prev, event, entry.before, entry.after)
        prev = event.hash
        events.append(event)
    _append(events, prev)
    for event in events:  # callers get plain values, as a read from the database would give
        event.before = None if event.before is None else json.loads(event.before)
        event.after = None if event.after is None else json.loads(event.after)
    return events


# Up to this many events go through ``steward_audit_append`` at once (the denials of a batch of decisions).
_ALONE_LIMIT = 10_000


def record_alone(*, actor: Actor | None, entries: Iterable[AuditEntry], at: datetime | None = None) -> int:
    """Append events that record no change of their own (the decision API's denials); returns how many.

    On PostgreSQL one statement, in the caller's transaction if there is one and as its own otherwise: the
    function ``steward_audit_append`` (migration ``0005``) locks the chain's head, hashes each event's canonical
    text (its parts built here, with the previous hash put in at its place: the same bytes ``record_many``
    hashes), inserts the events and moves the head. One round trip instead of four, and the head is held only
    while it runs. Elsewhere, or for more than ``_ALONE_LIMIT`` events, ``record_many`` in a transaction."""
    entries = list(entries)
    if not entries:
        return 0
    call = alone_call(actor=actor, entries=entries, at=at)
    if call is None:
        with transaction.atomic():
            return len(record_many(actor=actor, entries=entries, at=at))
    expression, params = call
    execute_prepared(f"SELECT {expression}", params, fetch="one")
    return len(entries)


def alone_call(
    *, actor: Actor | None, entries: list[AuditEntry], at: datetime | None = None
) -> tuple[str, list[Any]] | None:
    """``record_alone``'s append as an SQL expression and its parameters, for a caller to put in a statement of
    its own (the decision API checks its decision generation in the same round trip); ``None`` where the events
    must go the slow way (not PostgreSQL, or more than ``_ALONE_LIMIT`` events).

    Each event's canonical text (what ``_digest_values`` hashes) is put together by the database (which alone
    knows the previous hash, under the head's lock) from parts sent here, one array per part (migration ``0005``):
    the opening up to ``"after":`` (one per action), ``after``, the call's ``"at"`` part, ``before``, the previous
    hash and the rest. Each part is dumped as ``canonical_text`` dumps it inside the whole (strings with
    ``encode_basestring``, the same escaping; keys in the canonical, sorted, order): the same bytes, with
    ``after`` dumped once (for the text and its column alike) and the fields shared by the call once per call."""
    if connection.vendor != "postgresql" or not entries or len(entries) > _ALONE_LIMIT:
        return None
    for entry in entries:
        actions.check(entry.action)
    system_reason = _AS_SYSTEM.get()
    if system_reason is not None:
        actor = None
    when = at or timezone.now()
    actor_id = getattr(actor, "pk", None)
    actor_name = getattr(actor, "username", "") or ("system" if actor is None else str(actor))
    rid = current_request_id()
    request_id = "" if rid == "-" else rid
    # "action":...,"actor_id":...,"actor_name":...,"after":...,"at":...,"before":...,"prev":"<previous hash>",
    # "reason":...,"request_id":...,"target_id":...,"target_repr":...,"target_type":...
    shared = f',"actor_id":{canonical_text(actor_id)},"actor_name":{_json_text(actor_name)},"after":'
    at_part = f',"at":{_json_text(when.isoformat())},"before":'
    request_part = f',"request_id":{_json_text(request_id)},"target_id":'
    opening: dict[str, str] = {}
    columns: tuple[list[Any], ...] = ([], [], [], [], [], [], [], [], [])
    action_, type_, id_, repr_, before_, after_, reason_, open_, tail_ = columns
    for entry in entries:
        target_id, target_repr = str(entry.target_id), entry.target_repr[:600]
        reason = entry.reason or system_reason or ""
        action_part = opening.get(entry.action)
        if action_part is None:
            action_part = opening[entry.action] = '{"action":' + _json_text(entry.action) + shared
        action_.append(entry.action)
        type_.append(entry.target_type)
        id_.append(target_id)
        repr_.append(target_repr)
        before_.append(None if entry.before is None else canonical(entry.before))
        after_.append(None if entry.after is None else canonical(entry.after))
        reason_.append(reason)
        open_.append(action_part)
        tail_.append(
            f'","reason":{_json_text(reason)}{request_part}{_json_text(target_id)},"target_repr":'
            f'{_json_text(target_repr)},"target_type":{_json_text(entry.target_type)}}}'
        )
    # Sent in binary (``execute_prepared``): nothing for the database to parse but ``before`` and ``after``.
    arrays = ", ".join(["%b::text[]"] * len(columns))
    return (
        f"steward_audit_append(%s::timestamptz, %s::bigint, %s::text, %s::text, %s::text, {arrays})",
        [when, actor_id, actor_name, request_id, at_part, *columns],
    )


def _json_text(value: Any) -> str:
    """``value`` as ``canonical_text`` writes it inside a document (a string: escaped by the same C function)."""
    return encode_basestring(value) if type(value) is str else canonical_text(value)


def _canonical_event(prev_hash: str, event: AuditEvent, before: Any, after: Any) -> str:
    """The canonical text ``_digest_values`` hashes."""
    return canonical_text(
        {
            "action": event.action,
            "actor_id": event.actor_id,
            "actor_name": event.actor_name,
            "after": after,
            "at": event.at.isoformat(),
            "before": before,
            "prev": prev_hash,
            "reason": event.reason,
            "request_id": event.request_id,
            "target_id": event.target_id,
            "target_repr": event.target_repr,
            "target_type": event.target_type,
        }
    )


def _lock_head() -> str:
    """Lock the chain's head row for this transaction; the last hash (the genesis one on a new log)."""
    if connection.vendor == "postgresql":
        row = execute_prepared(f"SELECT last_hash FROM {_quoted(AuditHead)} WHERE id = 1 FOR UPDATE", [], fetch="one")
        if row is not None:
            return row[0]
    head, _ = AuditHead.objects.select_for_update().get_or_create(id=1)
    return head.last_hash


# Up to this many events go in one INSERT with the head's update (the decision API's denials); more by COPY.
_SMALL_APPEND = 50


def _append(events: list[AuditEvent], last_hash: str) -> None:
    """Insert the chained events and move the head: one statement for a few events on PostgreSQL."""
    rows = [[getattr(e, c) for c in AUDIT_COLUMNS] for e in events]
    if connection.vendor != "postgresql" or len(rows) > _SMALL_APPEND:
        insert_rows(AuditEvent, AUDIT_COLUMNS, rows)
        AuditHead.objects.filter(id=1).update(last_hash=last_hash)
        return
    quote = connection.ops.quote_name
    columns = ", ".join(quote(concrete_field(AuditEvent, c)[1]) for c in AUDIT_COLUMNS)
    one = "(" + ", ".join("%s::jsonb" if c in ("before", "after") else "%s" for c in AUDIT_COLUMNS) + ")"
    sql = (
        f"WITH appended AS (INSERT INTO {_quoted(AuditEvent)} ({columns}) VALUES {', '.join([one] * len(rows))}) "
        f"UPDATE {_quoted(AuditHead)} SET last_hash = %s WHERE id = 1"
    )
    execute_prepared(sql, [value for row in rows for value in row] + [last_hash], fetch="none")


def _quoted(model: type[models.Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def record(
    *,
    actor: Actor | None,
    action: str,
    target: Any = None,
    target_type: str = "",
    before: Any = None,
    after: Any = None,
    reason: str = "",
    at: datetime | None = None,
) -> AuditEvent:
    """Append one event describing ``action`` on ``target`` by ``actor``."""
    entry = AuditEntry(
        action=action,
        target_type=target_type or (target._meta.label_lower if target is not None else ""),
        target_id=str(getattr(target, "pk", "") or ""),
        target_repr=str(target) if target is not None else "",
        before=before,
        after=after,
        reason=reason,
    )
    return record_many(actor=actor, entries=[entry], at=at)[0]


def _hash_matches(prev: str, event: AuditEvent) -> bool:
    """The stored hash is the event's, in the canonical form or (events written before ``steward.canonical``,
    with non-ASCII text) in the legacy form, which differs from it only in escaping non-ASCII characters."""
    return _digest(prev, event) == event.hash or _digest(prev, event, form=legacy_text) == event.hash


def verify() -> AuditEvent | None:
    """Recompute the chain; return the first event whose hash or link is wrong, or ``None``.

    Only the events themselves: ``governance.services.audit_checkpoints.audit_verify`` adds the head (a
    truncated tail) and the signed checkpoints (a chain rewritten with recomputed hashes).
    """
    return walk().first_broken


@dataclass
class ChainWalk:
    """What recomputing (part of) the chain found."""

    first_broken: AuditEvent | None = None
    checked: int = 0
    last_seq: int | None = None
    last_hash: str = GENESIS
    hashes_at: dict[int, str] = field(default_factory=dict)


def walk(*, after_seq: int = 0, after_hash: str = GENESIS, collect: frozenset[int] = frozenset()) -> ChainWalk:
    """Recompute the events after ``after_seq`` (whose hash is ``after_hash``); the stored hash of each
    sequence number in ``collect`` is returned in ``hashes_at`` (to compare with checkpoints)."""
    result = ChainWalk(last_seq=after_seq or None, last_hash=after_hash, hashes_at={})
    prev = after_hash
    for event in AuditEvent.objects.filter(seq__gt=after_seq).order_by("seq").iterator(chunk_size=2000):
        result.checked += 1
        if result.first_broken is None and (event.prev_hash != prev or not _hash_matches(prev, event)):
            result.first_broken = event
        if event.seq in collect:
            result.hashes_at[event.seq] = event.hash
        prev = event.hash
        result.last_seq, result.last_hash = event.seq, event.hash
    return result


def head_hash(*, lock: bool = False) -> str:
    """The hash the head says the chain ends with (the genesis one on a new log); ``lock`` holds appends off
    until the caller's transaction ends."""
    if lock:
        return _lock_head()
    head = AuditHead.objects.filter(id=1).values_list("last_hash", flat=True).first()
    return head or GENESIS
