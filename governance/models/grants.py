"""Grants: time-limited permission for a user or a workspace to read a dataset."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from governance.choices import GrantState, Privilege


class Grant(models.Model):
    """Permission for a subject (a user, or a workspace by id) to ``privilege`` a dataset in a time window.

    Valid at ``t`` when ``valid_from <= t < valid_until``, not revoked at ``t`` and not suspended at ``t``.
    ``approved_level`` is the dataset's effective classification when approved; a higher level suspends it.
    ``state`` is for display and the expiry sweep; decisions compare times (``governance.authorization``).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="grants"
    )
    workspace_id = models.UUIDField(null=True, blank=True)
    workspace_label = models.CharField(max_length=200, blank=True)
    dataset = models.ForeignKey("catalog.Dataset", on_delete=models.CASCADE, related_name="grants")
    privilege = models.CharField(max_length=16, choices=Privilege.choices, default=Privilege.READ)
    valid_from = models.DateTimeField()
    valid_until = models.DateTimeField()
    request = models.ForeignKey(
        "governance.AccessRequest", on_delete=models.SET_NULL, null=True, blank=True, related_name="grants"
    )
    approved_level = models.CharField(max_length=16)
    policy_version = models.ForeignKey(
        "governance.PolicyVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    state = models.CharField(max_length=16, choices=GrantState.choices, default=GrantState.ACTIVE)
    suspended_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    revoke_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(valid_until__gt=F("valid_from")), name="grant_window_not_empty"),
            models.CheckConstraint(
                condition=Q(user__isnull=False, workspace_id__isnull=True)
                | Q(user__isnull=True, workspace_id__isnull=False),
                name="grant_one_subject",
            ),
        ]
        indexes = [
            # The decision query looks grants up by (subject, dataset) pairs; valid_until narrows the window.
            models.Index(fields=["user", "dataset", "valid_until"], name="grant_user_decision"),
            models.Index(fields=["workspace_id", "dataset", "valid_until"], name="grant_workspace_decision"),
            models.Index(fields=["dataset", "valid_until"], name="grant_dataset_window"),
            models.Index(fields=["state", "valid_until"], name="grant_state_sweep"),
        ]

    def __str__(self) -> str:
        who = f"user {self.user_id}" if self.user_id else f"workspace {self.workspace_label or self.workspace_id}"
        return f"{self.privilege} {self.dataset_id} for {who}"

    def state_at(self, at: datetime) -> str:
        """The state as a decision at ``at`` sees it (suspension as currently recorded)."""
        if self.revoked_at is not None and self.revoked_at <= at:
            return GrantState.REVOKED
        if at >= self.valid_until:
            return GrantState.EXPIRED
        if self.suspended_at is not None:
            return GrantState.SUSPENDED
        return GrantState.ACTIVE

    def snapshot(self) -> dict:
        return {
            "user_id": self.user_id,
            "workspace_id": str(self.workspace_id) if self.workspace_id else None,
            "dataset_id": str(self.dataset_id),
            "privilege": self.privilege,
            "valid_from": self.valid_from.isoformat(),
            "valid_until": self.valid_until.isoformat(),
            "approved_level": self.approved_level,
            "state": self.state,
            "request_id": str(self.request_id) if self.request_id else None,
        }


class GrantSuspension(models.Model):
    """One period during which a grant was suspended (so decisions ``at`` a past time stay exact)."""

    grant = models.ForeignKey(Grant, on_delete=models.CASCADE, related_name="suspensions")
    level = models.CharField(max_length=16, help_text="The effective classification that caused the suspension.")
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["grant", "started_at"]
        indexes = [models.Index(fields=["grant", "started_at"])]

    def __str__(self) -> str:
        return f"{self.grant_id} suspended {self.started_at:%Y-%m-%d %H:%M}"
