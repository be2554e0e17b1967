"""Compliance reports: run a reconstruction, store it as delivered, digest it, audit who asked."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from compliance.actions import RECONSTRUCT, REPORT_CREATE, REPORT_VIEW
from compliance.models import ComplianceReport
from compliance.reconstruction import Query, reconstruct
from ledger import audit
from steward.canonical import canonical_bytes, digest
from steward.errors import PermissionDenied
from steward.identity import Actor, Role, authenticated_user, has_role

__all__ = [
    "BUNDLE_FORMAT",
    "REPORT_READERS",
    "bundle_digest",
    "canonical_json",
    "report_build",
    "report_create",
    "report_look",
    "report_viewed",
]

REPORT_READERS = (Role.COMPLIANCE_OFFICER, Role.ADMIN)
BUNDLE_FORMAT = "steward.compliance-bundle/1"
# Audit events name reports as they did before the model moved to compliance.
TARGET_TYPE = "governance.compliancereport"


def canonical_json(value: Any) -> bytes:
    """The canonical form the digest covers (``steward.canonical``, documented in docs/compliance.md)."""
    return canonical_bytes(value)


def bundle_digest(bundle: dict[str, Any]) -> str:
    """SHA-256 (hex) of the bundle's canonical JSON; anyone can recompute it from a downloaded bundle."""
    return digest(bundle)


def check_reader(actor: Actor) -> None:
    if not has_role(actor, *REPORT_READERS):
        raise PermissionDenied("Only compliance officers and admins reconstruct past decisions.")


def _query_view(query: Query) -> dict[str, Any]:
    return {
        "result": str(query.result) if query.result else None,
        "model_version": str(query.model_version) if query.model_version else None,
        "at": query.at.isoformat() if query.at else None,
        "lineage_depth": query.lineage_depth,
    }


def report_build(*, actor: Actor, query: Query, now: datetime | None = None, stored: bool = True) -> ComplianceReport:
    """Reconstruct into a report, not saved: the bundle exactly as it will be delivered, with its digest.
    ``stored=False`` (a reconstruction that is only looked at) leaves the bundle's report id empty."""
    check_reader(actor)
    now = now or timezone.now()
    reconstruction = reconstruct(query, now=now)
    report = ComplianceReport(query=_query_view(query), requested_by=authenticated_user(actor), requested_at=now)
    report.at = datetime.fromisoformat(reconstruction["at"])
    report.bundle = {
        "format": BUNDLE_FORMAT,
        "report": {
            "id": str(report.pk) if stored else None,
            "requested_by": actor.get_username(),
            "requested_at": now.isoformat(),
            "query": report.query,
        },
        "reconstruction": reconstruction,
    }
    report.digest = bundle_digest(report.bundle)
    return report


@transaction.atomic
def report_create(*, actor: Actor, query: Query) -> ComplianceReport:
    """Reconstruct, store the bundle exactly as it will be delivered, and audit the request with its digest."""
    now = timezone.now()
    report = report_build(actor=actor, query=query, now=now)
    report.save()
    audit.record(
        actor=actor,
        action=REPORT_CREATE,
        target=report,
        target_type=TARGET_TYPE,
        after={"query": report.query, "at": report.at.isoformat(), "digest": report.digest},
        at=now,
    )
    return report


@transaction.atomic
def report_look(*, actor: Actor, query: Query) -> ComplianceReport:
    """Reconstruct without storing (GET): the unsaved report; only the asking is audited, as reads of stored
    reports are (``report_viewed``)."""
    report = report_build(actor=actor, query=query, stored=False)
    audit.record(
        actor=actor,
        action=RECONSTRUCT,
        target_type=TARGET_TYPE,
        after={"query": report.query, "at": report.at.isoformat(), "digest": report.digest},
        at=report.requested_at,
    )
    return report


@transaction.atomic
def report_viewed(*, actor: Actor, report: ComplianceReport, form: str) -> None:
    """Audit that ``actor`` opened or downloaded a stored report (``form``: html | json)."""
    audit.record(actor=actor, action=REPORT_VIEW, target=report, target_type=TARGET_TYPE, after={"form": form})
