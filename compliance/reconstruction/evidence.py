"""The policy in force and the audit trail of everything the reconstruction names, both as of an instant."""

from __future__ import annotations

from datetime import datetime

from compliance.reconstruction.resolve import iso
from compliance.reconstruction.types import AuditSection, PolicyView
from django.db.models import Count, Window

from governance.models import PolicyVersion
from ledger.models import AuditEvent

__all__ = ["AUDIT_LIMIT", "audit", "policies"]

AUDIT_LIMIT = 500


def policies(*instants: datetime) -> list[PolicyView | None]:
    """The policy version in force at each instant (one query: versions are few and immutable)."""
    versions = list(
        PolicyVersion.objects.filter(created_at__lte=max(instants)).order_by("-version").only("version", "created_at")
    )
    chosen = [next((v for v in versions if v.created_at <= at), None) for at in instants]
    documents = {
        v.version: v.document()
        for v in PolicyVersion.objects.filter(version__in={c.version for c in chosen if c is not None})
    }
    return [
        {"version": c.version, "published_at": iso(c.created_at), "document": documents[c.version]}
        if c is not None
        else None
        for c in chosen
    ]


def audit(target_ids: set[str], at: datetime) -> AuditSection:
    """The audit events on the named targets up to ``at`` (the last ``AUDIT_LIMIT``, oldest first)."""
    qs = AuditEvent.objects.filter(target_id__in=sorted(target_ids), at__lte=at)
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
