"""Declassification: block named tags across one job's edges, approved by a data steward who did not ask."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from catalog.models import Tag
from ledger import audit
from lineage import permissions
from lineage.actions import DECLASSIFICATION
from lineage.history import capture_declassifications
from lineage.models import ColumnEdge, Declassification, DeclassificationState, Edge, Job
from lineage.propagation import note_change
from steward.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from steward.identity import Actor, authenticated_user

__all__ = ["declassification_decide", "declassification_request", "declassification_revoke"]


def _job_targets(job: Job) -> set[UUID]:
    targets = set(Edge.objects.filter(job=job, valid_to__isnull=True).values_list("target_id", flat=True))
    targets |= set(
        ColumnEdge.objects.filter(job=job, valid_to__isnull=True).values_list("target_dataset_id", flat=True)
    )
    return targets


@transaction.atomic
def declassification_request(*, actor: Actor, job_id: Any, tag_keys: list[str], justification: str) -> Declassification:
    if not permissions.can_request_declassification(actor):
        raise PermissionDenied("Data owners, stewards, privacy officers and admins request declassifications.")
    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        raise ValidationFailed.one("job", f"No job {job_id}.", "unknown_job")
    if not tag_keys:
        raise ValidationFailed.one("tags", "Name at least one tag to block.", "required")
    tags = list(Tag.objects.filter(key__in=tag_keys))
    unknown = sorted(set(tag_keys) - {t.key for t in tags})
    if unknown:
        raise ValidationFailed.one("tags", f"Unknown tag(s): {', '.join(unknown)}.", "unknown_tag")
    if not (justification or "").strip():
        raise ValidationFailed.one("justification", "Say why these tags may stop at this job.", "required")
    decl = Declassification.objects.create(job=job, justification=justification, requested_by=authenticated_user(actor))
    decl.tags.set(tags)
    capture_declassifications([decl.pk], at=decl.requested_at)
    audit.record(
        actor=actor,
        action=DECLASSIFICATION["request"],
        target=decl,
        after={"job": str(job), "tags": sorted(tag_keys), "justification": justification},
    )
    return decl


def _get(pk: Any, *, lock: bool = True) -> Declassification:
    qs = Declassification.objects.select_for_update() if lock else Declassification.objects
    decl = qs.filter(pk=pk).first()
    if decl is None:
        raise NotFound(f"No declassification {pk}.")
    return decl


@transaction.atomic
def declassification_decide(*, actor: Actor, pk: Any, approve: bool, reason: str = "") -> Declassification:
    """Approve or reject a pending request (data stewards only, never one's own)."""
    decl = _get(pk)
    if decl.requested_by_id == getattr(actor, "pk", None):
        raise PermissionDenied("You may not decide your own declassification request.")
    if not permissions.can_decide_declassification(actor):
        raise PermissionDenied("Only a data steward decides declassification requests.")
    if decl.state != DeclassificationState.PENDING:
        raise Conflict(f"This request is already {decl.state}.")
    now = timezone.now()
    decl.state = DeclassificationState.APPROVED if approve else DeclassificationState.REJECTED
    decl.decided_by, decl.decided_at, decl.decision_reason = authenticated_user(actor), now, reason or ""
    if approve:
        decl.valid_from = now
    decl.save()
    capture_declassifications([decl.pk], at=now)
    audit.record(
        actor=actor,
        action=DECLASSIFICATION["approve" if approve else "reject"],
        target=decl,
        after={"state": decl.state},
        reason=reason or "",
    )
    if approve:
        note_change(_job_targets(decl.job), decl.tags.values_list("pk", flat=True))
    return decl


@transaction.atomic
def declassification_revoke(*, actor: Actor, pk: Any, reason: str) -> Declassification:
    """End an approved block (stewards), or withdraw one's own pending request."""
    decl = _get(pk)
    now = timezone.now()
    if decl.state == DeclassificationState.PENDING and decl.requested_by_id == getattr(actor, "pk", None):
        decl.state = DeclassificationState.WITHDRAWN
    elif decl.state == DeclassificationState.APPROVED:
        if not permissions.can_decide_declassification(actor):
            raise PermissionDenied("Only a data steward revokes a declassification.")
        if not (reason or "").strip():
            raise ValidationFailed.one("reason", "Say why the block ends.", "required")
        decl.state, decl.valid_to = DeclassificationState.REVOKED, now
    else:
        raise Conflict(f"A {decl.state} request cannot be withdrawn or revoked.")
    decl.save()
    capture_declassifications([decl.pk], at=now)
    audit.record(actor=actor, action=DECLASSIFICATION[decl.state], target=decl, reason=reason or "")
    if decl.state == DeclassificationState.REVOKED:
        note_change(_job_targets(decl.job), decl.tags.values_list("pk", flat=True))
    return decl
