"""Access requests, the datasets they name, and the approvals they need."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone

from governance.choices import ApproverRole, RequestState


class AccessRequest(models.Model):
    """A request to read datasets for a purpose and a duration: pending → approved/denied/withdrawn/expired.

    The subject is the requester, or the workspace named by ``workspace_id`` (workspaces arrive in a later
    issue; the label is kept for display). ``reapproval_of`` marks a request to lift a grant's suspension.
    A pending request times out at ``expires_at``.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    requester = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_requests")
    workspace_id = models.UUIDField(null=True, blank=True)
    workspace_label = models.CharField(max_length=200, blank=True)
    purpose = models.CharField(max_length=64)
    justification = models.TextField()
    duration = models.DurationField()
    state = models.CharField(max_length=16, choices=RequestState.choices, default=RequestState.PENDING)
    reapproval_of = models.ForeignKey(
        "governance.Grant", on_delete=models.CASCADE, null=True, blank=True, related_name="reapprovals"
    )
    policy_version = models.ForeignKey(
        "governance.PolicyVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decision_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["requester", "-created_at"]),
            models.Index(fields=["state", "expires_at"]),
        ]

    def __str__(self) -> str:
        return f"request {str(self.id)[:8]} by {self.requester_id} ({self.state})"

    def state_at(self, at: datetime) -> str:
        """The state as a user sees it at ``at``: a pending request past its deadline is expired."""
        if self.state == RequestState.PENDING and at >= self.expires_at:
            return RequestState.EXPIRED
        return self.state

    def snapshot(self) -> dict:
        return {
            "state": self.state,
            "purpose": self.purpose,
            "duration_seconds": int(self.duration.total_seconds()),
            "workspace_id": str(self.workspace_id) if self.workspace_id else None,
            "reapproval_of": str(self.reapproval_of_id) if self.reapproval_of_id else None,
        }


class AccessRequestItem(models.Model):
    """One dataset of a request, with the classification level its approvals were required for."""

    request = models.ForeignKey(AccessRequest, on_delete=models.CASCADE, related_name="items")
    dataset = models.ForeignKey("catalog.Dataset", on_delete=models.CASCADE, related_name="access_request_items")
    level = models.CharField(max_length=16)

    class Meta:
        ordering = ["request", "id"]
        constraints = [models.UniqueConstraint(fields=["request", "dataset"], name="request_item_once")]

    def __str__(self) -> str:
        return f"{self.request_id}:{self.dataset_id}@{self.level}"


class ApprovalSlot(models.Model):
    """One approval a request needs: a role, and for ``owner`` the dataset whose owner must approve.

    Filled by one person (``filled_by``); a person fills slots of one role per request. ``owner_fallback``
    marks an owner slot for a dataset with no owner other than the requester: a data steward fills it.
    """

    request = models.ForeignKey(AccessRequest, on_delete=models.CASCADE, related_name="slots")
    role = models.CharField(max_length=32, choices=ApproverRole.choices)
    dataset = models.ForeignKey("catalog.Dataset", on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    owner_fallback = models.BooleanField(default=False)
    filled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="approvals"
    )
    filled_by_name = models.CharField(max_length=150, blank=True)
    filled_at = models.DateTimeField(null=True, blank=True)
    comment = models.TextField(blank=True)

    class Meta:
        ordering = ["request", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["request", "role", "dataset"],
                condition=models.Q(dataset__isnull=False),
                name="slot_per_dataset",
            ),
            models.UniqueConstraint(
                fields=["request", "role"], condition=models.Q(dataset__isnull=True), name="slot_per_role"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.request_id}:{self.role}:{self.dataset_id or '-'}"
