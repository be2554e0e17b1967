"""The policy in force and the audit trail of everything the reconstruction names, both as of an instant."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Count, Window

from compliance.reconstruction.resolve import iso
from compliance.reconstruction.types import AuditSection, PolicyView
from governance.models import PolicyVersion
from ledger.models import AuditEvent

__all__ = ["AUDIT_LIMIT", "audit", "policies", "policy_timeline"]

AUDIT_LIMIT = 500

PolicyTimeline = list[tuple[int, datetime]]  # (version, published at), newest version first


def policy_timeline(until: datetime) -> PolicyTimeline:
    """Every policy version published by ``until`` (one query, documents left out): which one was in force at an
    instant (``policies``) and which came after it (``changes_since``)."""
    return list(
        PolicyVersion.objects.filter(created_at__lte=until).order_by("-version").values_list("version", "created_at")
    )


def policies(timeline: PolicyTimeline, *instants: datetime) -> list[PolicyView | None]:
    """The policy version in force at each instant (the newest published by then), with its document (one query
    for the documents of all the instants)."""
    chosen = [next(((v, t) for v, t in timeline if t <= at), None) for at in instants]
    wanted = {c[0] for c in chosen if c is not None}
    documents = {v.version: v.document() for v in PolicyVersion.objects.filter(version__in=wanted)} if wanted else {}
    return [
        None if c is None else {"version": c[0], "published_at": iso(c[1]), "document": documents[c[0]]} for c in chosen
    ]


def audit(target_ids: set[str], at: datetime) -> AuditSection:
    """The audit events on the named targets up to ``at`` (the last ``AUDIT_LIMIT``, oldest first)."""
    qs = AuditEvent.objects.filter(target_id__in=sorted(target_ids), at__lte=at)
    # The count of every matching event rides along on each row shown (a window over the whole filtered set,
    # computed before the limit): one query instead of a count and a read.
    events = list(qs.annotate(total=Window(Count("*"))).order_by("-seq")[:AUDIT_LIMIT])
    total = events[0].total if events else 0
    return {
        "total": total,
        "shown": len(events),
        "events": [
            {
                "seq": e.seq,
                "at": iso(e.at),
                "actor": e.actor_name,
                "action": e.action,
                "target_type": e.target_type,
                "target_id": e.target_id,
                "target": e.target_repr,
                "reason": e.reason,
                "hash": e.hash,
            }
            for e in reversed(events)
        ],
    }
