"""The decision API's service: who may ask, the decisions themselves, and the audit of denials."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from governance import decision_index
from governance.actions import DECISION_DENY
from governance.authorization import Decision, DecisionQuery, Reason, decide_many
from ledger import audit
from ledger.audit import AuditEntry
from steward import metrics
from steward.errors import FieldProblem, PermissionDenied
from steward.identity import DECISION_CALLERS, Actor, has_role

__all__ = ["authorize", "may_ask_for_anyone"]


def may_ask_for_anyone(actor: Actor) -> bool:
    """Service accounts, admins and compliance officers ask about any subject; others only about themselves."""
    return has_role(actor, *DECISION_CALLERS)


def _about_actor(actor: Actor, query: DecisionQuery) -> bool:
    if query.workspace_id is not None:
        return False
    if query.username is not None:
        return query.username == actor.get_username()
    return query.user_id == actor.pk


def _subject_text(q: DecisionQuery) -> str:
    if q.workspace_id is not None:
        return f"workspace:{q.workspace_id}"
    return q.username if q.username is not None else f"user#{q.user_id}"


def _asset_text(q: DecisionQuery) -> str:
    return str(q.dataset_id) if q.dataset_id is not None else f"{q.namespace}/{q.name}"


def authorize(
    *, actor: Actor, queries: list[DecisionQuery], now: datetime | None = None, paths: list[str] | None = None
) -> list[Decision]:
    """Decide ``queries`` for ``actor``; denials are appended to the audit log (one statement).

    ``paths`` name each query's place in the input (``requests[3]``) for errors. Callers who may only ask about
    themselves get ``no_grant`` rather than ``unknown_asset``, so a guessed name reveals nothing.
    """
    now = now or timezone.now()
    anyone = may_ask_for_anyone(actor)
    if not anyone:
        for i, q in enumerate(queries):
            if not _about_actor(actor, q):
                field = f"{paths[i]}.subject" if paths else "subject"
                message = "You may ask only about yourself; service accounts, admins and compliance officers may ask."
                raise PermissionDenied(f"{field}: {message}", problems=[FieldProblem(field, message, "not_yourself")])
    decisions = decide_many(queries, now=now)
    if not anyone:
        decisions = [
            Decision("deny", Reason.NO_GRANT, user_id=d.user_id) if d.reason == Reason.UNKNOWN_ASSET else d
            for d in decisions
        ]
    denied = [(q, d) for q, d in zip(queries, decisions, strict=True) if not d.allowed]
    entries = [
        AuditEntry(
            DECISION_DENY,
            "catalog.dataset",
            str(d.dataset_id or ""),
            f"{q.action} {_asset_text(q)} by {_subject_text(q)}",
            after={
                "subject": _subject_text(q),
                "user_id": d.user_id,
                "asset": _asset_text(q),
                "action": q.action,
                "at": (q.at or now).isoformat(),
                "reason": d.reason,
                "grant_id": str(d.grant_id) if d.grant_id else None,
            },
        )
        for q, d in denied
    ]
    # Answered from memory at an assumed decision generation (the fast path), the generation is read back with
    # the denials' audit append in one statement (``decision_index.confirm``: nothing is appended if it moved, and
    # the request is answered again). Otherwise the append is one statement of its own (``audit.record_alone``).
    append = audit.alone_call(actor=actor, entries=entries, at=now) if entries and decision_index.assumed() else None
    if not decision_index.confirm(append) and entries:
        audit.record_alone(actor=actor, entries=entries, at=now)
    metrics.decisions(allowed=len(decisions) - len(denied), denied=len(denied))
    return decisions
