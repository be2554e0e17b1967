"""Queued ingestion: accept OpenLineage events now, apply them in batches shortly after.

A producer that asks for it (``Prefer: respond-async``), or every producer when ``STEWARD_LINEAGE_INGEST`` is
``queued``, gets its answer once its events are validated, authorised and durably stored in the inbox (one insert,
no catalog or lineage writes): a 202 with ``status: queued``. The ``lineage.inbox_drain`` task then applies the
inbox in order, up to ``DRAIN_BATCH`` events per transaction through ``ingest`` (rights and namespaces checked
again, as of the apply), and deletes what it applied in the same transaction. So:

- nothing is lost: an accepted event is committed before the answer, and leaves the inbox only in the
  transaction that applied it (a worker that dies mid-batch leaves the batch for the next drain; drains also run
  every minute from beat);
- nothing is applied twice: events are keyed by their digest, as in direct ingestion (a resend is a duplicate
  whether it waits in the inbox or was applied);
- concurrent drains take disjoint batches (``FOR UPDATE SKIP LOCKED``) and ingestion itself is race-free;
- the inbox is bounded (``STEWARD_LINEAGE_INBOX_LIMIT``): while that many events wait, a queued call stores
  nothing and answers 503 with ``Retry-After``, so producers slow to the rate the drain applies at instead of the
  inbox growing without end (the OpenLineage clients resend after the time it names); direct calls are unaffected;
- an event that cannot be applied any more (its producer lost the right or the namespace in between) stays in
  the inbox as ``failed`` with the reason, and the rest of its batch is applied; ``retry_failed`` puts failed
  events back in the queue (``manage.py lineage_inbox --retry-failed``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Count, Min
from django.utils import timezone

from lineage.models import InboxEvent, InboxState, LineageEvent
from lineage.services.ingest import IngestResult, check, ingest
from steward import metrics
from steward.bulk import bound_cursor, insert_rows
from steward.errors import DomainError, FieldProblem, Overloaded
from steward.gctune import paused
from steward.identity import Actor
from steward.tasks import enqueue_coalesced_on_commit

__all__ = [
    "COUNT_MAX_AGE_S",
    "DRAIN_BATCH",
    "DrainResult",
    "InboxStatus",
    "accept",
    "drain",
    "forget_count",
    "retry_failed",
    "status",
]

logger = logging.getLogger(__name__)

DRAIN_BATCH = 500  # events applied per transaction by a drain (``ingest.MAX_BATCH`` at most)


# A web process counts what waits at most this often; its own accepts are added meanwhile. So a full inbox may
# take up to this long to be seen (and room made by a drain to be seen), and it may overshoot its limit by what
# the other processes accept meanwhile: the limit bounds the inbox's growth, not its exact size. The count stops
# at the limit, but costs most near it: 52 ms at 200,000 waiting events (PostgreSQL 15, this machine), so 2.6% of
# a core per web process at this age.
COUNT_MAX_AGE_S = 2.0
_counted: tuple[float, int] | None = None  # (monotonic time of the count, events waiting then + accepted since)


def forget_count() -> None:
    """Count what waits afresh on the next call (tests, and after a drain in this process)."""
    global _counted
    _counted = None


def _waiting(limit: int) -> int:
    """The pending events (at most ``limit``: the count stops there), as counted at most ``COUNT_MAX_AGE_S`` ago."""
    global _counted
    now = time.monotonic()
    if _counted is None or now - _counted[0] >= COUNT_MAX_AGE_S:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT count(*) FROM (SELECT 1 FROM {InboxEvent._meta.db_table} WHERE state = %s LIMIT %s) t",
                [InboxState.PENDING.value, limit],
            )
            _counted = (now, cursor.fetchone()[0])
    return _counted[1]


def _room_check(events: int) -> None:
    """Raise ``Overloaded`` (503, ``Retry-After``) while ``STEWARD_LINEAGE_INBOX_LIMIT`` events wait."""
    limit = settings.STEWARD_LINEAGE_INBOX_LIMIT
    if limit <= 0:
        return
    waiting = _waiting(limit)
    if waiting < limit:
        return
    retry = settings.STEWARD_LINEAGE_INBOX_RETRY_AFTER_S
    metrics.ingestion("openlineage_queued", deferred=events)
    raise Overloaded(
        f"The lineage inbox is full: {limit:,} events wait to be applied (STEWARD_LINEAGE_INBOX_LIMIT). Nothing "
        f"was stored; send the same events again in {retry} s (a resend is never applied twice). If this lasts, "
        "the operators should check the inbox drain (GET /api/v1/lineage/inbox, the Celery worker).",
        retry_after=retry,
        problems=[FieldProblem(None, f"{limit:,} events wait to be applied.", "inbox_full")],
    )


def _count_accepted(n: int) -> None:
    global _counted
    if _counted is not None:
        _counted = (_counted[0], _counted[1] + n)


def accept(*, actor: Actor, events: list[Any], batch: bool = False) -> list[IngestResult]:
    """Validate and authorise ``events`` as direct ingestion does (the same 400s and 403s), store them in the
    inbox and queue a drain; an event already applied or already waiting is a ``duplicate``. While the inbox is
    full (``STEWARD_LINEAGE_INBOX_LIMIT``), raise ``Overloaded`` first: nothing is checked or stored."""
    _room_check(len(events))
    checked = check(actor=actor, events=events, batch=batch)
    scopes = getattr(actor, "_steward_token_scopes", None)
    token_scopes = sorted(scopes) if scopes else None
    actor_id = actor.pk if getattr(actor, "pk", None) else None
    now = timezone.now()
    results: list[IngestResult] = []
    rows: dict[str, str] = {}  # digest -> canonical text, each event once
    for i, (event, digest, text) in enumerate(zip(checked.parsed, checked.digests, checked.texts, strict=True)):
        run_id = str(event.run_id) if event.run_id else None
        fresh = digest not in rows
        results.append(IngestResult(i, "queued" if fresh else "duplicate", event.kind, run_id, checked.dropped[i]))
        if fresh:
            rows[digest] = text
    if rows:
        stored = _store(rows, now, actor_id, token_scopes)
        for result, digest in zip(results, checked.digests, strict=True):
            if result.status == "queued" and digest not in stored:  # applied or waiting already (a resend)
                result.status = "duplicate"
        if stored:
            _count_accepted(len(stored))
            _drain_later()
    metrics.ingestion("openlineage_queued", accepted=len(rows))
    return results


def _store(rows: dict[str, str], now: datetime, actor_id: Any, token_scopes: list[str] | None) -> set[str]:
    """Insert the events neither applied nor waiting already; the digests of those inserted. On PostgreSQL one
    statement (no transaction of its own: the answer costs one round trip); an event under its pre-
    ``steward.canonical`` key (non-ASCII, stored long ago) is queued and found a duplicate by the drain."""
    if connection.vendor == "postgresql":
        # The events as two binary text arrays, bound apart from the statement (quoting megabytes of JSON into the
        # SQL text costs more in Python than the insert costs PostgreSQL).
        with bound_cursor() as cursor:
            cursor.execute(
                "INSERT INTO lineage_inboxevent (digest, payload, received_at, received_by_id, token_scopes, state, "
                "error) SELECT v.digest, v.payload, %s, %s, %s::jsonb, %s, '' FROM unnest(%b::text[], %b::text[]) "
                "AS v (digest, payload) WHERE NOT EXISTS (SELECT 1 FROM lineage_lineageevent e WHERE e.digest = "
                "v.digest) ORDER BY v.digest ON CONFLICT (digest) DO NOTHING RETURNING digest",
                [
                    now,
                    actor_id,
                    json.dumps(token_scopes) if token_scopes else None,
                    InboxState.PENDING.value,
                    list(rows),
                    list(rows.values()),
                ],
            )
            return {row[0] for row in cursor.fetchall()}
    with transaction.atomic():
        applied = set(LineageEvent.objects.filter(digest__in=list(rows)).values_list("digest", flat=True))
        waiting = set(InboxEvent.objects.filter(digest__in=list(rows)).values_list("digest", flat=True))
        fresh = {d: text for d, text in rows.items() if d not in applied and d not in waiting}
        insert_rows(
            InboxEvent,
            ["digest", "payload", "received_at", "received_by", "token_scopes", "state", "error"],
            [[d, text, now, actor_id, token_scopes, InboxState.PENDING, ""] for d, text in fresh.items()],
        )
    return set(fresh)


def _drain_later() -> None:
    from lineage.tasks import inbox_drain_task

    # Accepts during the linger queue no other drain: a burst of single events is applied in a few batches.
    enqueue_coalesced_on_commit(
        inbox_drain_task,
        "lineage_inbox",
        recovery="the periodic drain will apply it.",
        delay_s=settings.STEWARD_LINEAGE_INBOX_LINGER_MS / 1000,
    )


@dataclass
class DrainResult:
    applied: int = 0
    duplicates: int = 0
    failed: int = 0
    batches: int = 0

    @property
    def taken(self) -> int:
        return self.applied + self.duplicates + self.failed


def _actor(user_id: int | None, scopes: list[str] | None, users: dict[tuple[Any, ...], Any]) -> Any | None:
    """The producer an event came from, with the scopes of the token it used (``None``: the account is gone)."""
    if user_id is None:
        return None
    key = (user_id, *(scopes or ()))
    if key not in users:
        user = get_user_model().objects.filter(pk=user_id).first()
        if user is not None and scopes:
            setattr(user, "_steward_token_scopes", set(scopes))  # noqa: B010 - as accounts.services does
        users[key] = user
    return users[key]


def _problem(exc: DomainError) -> str:
    return "; ".join(p.message if p.field is None else f"{p.field}: {p.message}" for p in exc.problems) or exc.message


def _apply_group(actor: Any, rows: list[tuple[Any, ...]], result: DrainResult) -> dict[int, str]:
    """Apply one producer's consecutive events; returns the ids of those that failed, with the reason."""
    if actor is None:
        return {row[0]: "The producer's account was removed before the event was applied." for row in rows}
    events = [json.loads(row[1]) for row in rows]
    known = [(row[4], row[1]) for row in rows]  # each event's key and canonical text, as computed on receipt
    try:
        with transaction.atomic():
            outcomes = ingest(actor=actor, events=events, batch=True, known=known)
    except DomainError as exc:
        if len(rows) == 1:
            return {rows[0][0]: _problem(exc)}
        # Apply one by one, so that the others are not held back by one that cannot be applied any more.
        failed: dict[int, str] = {}
        for row, event, pair in zip(rows, events, known, strict=True):
            try:
                with transaction.atomic():
                    outcomes = ingest(actor=actor, events=[event], batch=True, known=[pair])
            except DomainError as exc:
                failed[row[0]] = _problem(exc)
                continue
            _count(outcomes, result)
        return failed
    _count(outcomes, result)
    return {}


def _count(outcomes: list[IngestResult], result: DrainResult) -> None:
    for outcome in outcomes:
        if outcome.status == "applied":
            result.applied += 1
        else:
            result.duplicates += 1


def drain(*, progress: Callable[[DrainResult], None] | None = None) -> DrainResult:
    """Apply pending inbox events in arrival order, ``DRAIN_BATCH`` per transaction, until none is left. Safe to
    run concurrently and any number of times; a database error rolls back the batch for the next drain."""
    result = DrainResult()
    users: dict[tuple[Any, ...], Any] = {}
    while True:
        with paused(), transaction.atomic():
            rows = list(
                InboxEvent.objects.select_for_update(skip_locked=True)
                .filter(state=InboxState.PENDING)
                .order_by("id")
                .values_list("id", "payload", "received_by_id", "token_scopes", "digest")[:DRAIN_BATCH]
            )
            if not rows:
                break
            failed: dict[int, str] = {}
            for (user_id, scopes), group in groupby(rows, key=lambda r: (r[2], r[3])):
                failed |= _apply_group(_actor(user_id, scopes, users), list(group), result)
            done = [row[0] for row in rows if row[0] not in failed]
            InboxEvent.objects.filter(pk__in=done).delete()
            now = timezone.now()
            for pk, reason in failed.items():
                InboxEvent.objects.filter(pk=pk).update(state=InboxState.FAILED, error=reason[:4000], failed_at=now)
            result.failed += len(failed)
            result.batches += 1
        if failed:
            logger.warning(
                "%d queued lineage event(s) could not be applied; see GET /api/v1/lineage/inbox", len(failed)
            )
            metrics.ingestion("openlineage_queued", refused=len(failed))
        if progress is not None:
            progress(result)
    forget_count()
    return result


@dataclass
class InboxStatus:
    pending: int
    failed: int
    oldest_pending_at: datetime | None
    limit: int | None  # STEWARD_LINEAGE_INBOX_LIMIT (None: no limit); at it, queued calls answer 503
    failures: list[dict[str, Any]]


def status(*, failures: int = 100, producer: Actor | None = None) -> InboxStatus:
    """How many events wait, since when, and the latest that could not be applied (with the reason); with
    ``producer``, only that producer's failures are listed."""
    counts: dict[str, dict[str, Any]] = {
        row["state"]: {"n": row["n"], "oldest": row["oldest"]}
        for row in InboxEvent.objects.values("state").annotate(n=Count("id"), oldest=Min("received_at")).order_by()
    }
    pending = counts.get(InboxState.PENDING, {})
    failed_rows = InboxEvent.objects.filter(state=InboxState.FAILED)
    if producer is not None:
        failed_rows = failed_rows.filter(received_by_id=producer.pk)
    failed_rows = failed_rows.select_related("received_by").order_by("-failed_at", "-id")[:failures]
    return InboxStatus(
        pending=pending.get("n", 0),
        failed=counts.get(InboxState.FAILED, {}).get("n", 0),
        oldest_pending_at=pending.get("oldest"),
        limit=settings.STEWARD_LINEAGE_INBOX_LIMIT or None,
        failures=[
            {
                "id": row.pk,
                "digest": row.digest,
                "received_at": row.received_at,
                "received_by": row.received_by.get_username() if row.received_by else None,
                "failed_at": row.failed_at,
                "error": row.error,
            }
            for row in failed_rows
        ],
    )


def retry_failed() -> int:
    """Put every failed event back in the queue (after the producer got its rights back); returns how many."""
    with transaction.atomic():
        count = InboxEvent.objects.filter(state=InboxState.FAILED).update(
            state=InboxState.PENDING, error="", failed_at=None
        )
        if count:
            _drain_later()
    return count
