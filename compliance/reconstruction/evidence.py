"""The policy in force and the audit trail of everything the reconstruction names, both as of an instant."""

from __future__ import annotations

from datetime import datetime

from compliance.reconstruction.resolve import iso
from compliance.reconstruction.types import AuditSection, PolicyView
from governance.models import PolicyVersion
from ledger.models import AuditEvent

__all__ = ["AUDIT_LIMIT", "audit", "policy"]

AUDIT_LIMIT = 500


def policy(at: datetime) -> PolicyView | None:
    """The policy version in force at ``at``."""
    version = PolicyVersion.objects.filter(created_at__lte=at).order_by("-version").first()
    if version is None:
        return None
    return {"version": version.version, "published_at": iso(version.created_at), "document": version.document()}


def audit(target_ids: set[str], at: datetime) -> AuditSection:
    """The audit events on the named targets up to ``at`` (the last ``AUDIT_LIMIT``, oldest first)."""
    qs = AuditEvent.objects.filter(target_id__in=sorted(target_ids), at__lte=at)
    total = qs.count()
    events = list(qs.order_by("-seq")[:AUDIT_LIMIT])
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
