"""Choices for governance records: who approves, request and grant states, privileges."""

from __future__ import annotations

from django.db import models

__all__ = ["APPROVER_ORDER", "ApproverRole", "GrantChange", "GrantState", "Privilege", "RequestState"]


class ApproverRole(models.TextChoices):
    """Roles a policy level may require. ``owner`` means an owner of the dataset being requested."""

    OWNER = "owner", "Dataset owner"
    PRIVACY_OFFICER = "privacy-officer", "Privacy officer"
    DATA_STEWARD = "data-steward", "Data steward"


# When one person could approve in several roles and names none, the role filled is the first of these.
APPROVER_ORDER = (ApproverRole.OWNER, ApproverRole.PRIVACY_OFFICER, ApproverRole.DATA_STEWARD)


class RequestState(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    DENIED = "denied", "Denied"
    WITHDRAWN = "withdrawn", "Withdrawn"
    EXPIRED = "expired", "Expired"


class GrantState(models.TextChoices):
    """A grant's state for display; decisions compare times and never read this column."""

    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"
    REVOKED = "revoked", "Revoked"
    EXPIRED = "expired", "Expired"


class GrantChange(models.TextChoices):
    """What happened to grants, as sent with the ``grant_changed`` signal."""

    CREATED = "created", "Created"
    REVOKED = "revoked", "Revoked"
    SUSPENDED = "suspended", "Suspended"
    RESUMED = "resumed", "Resumed"
    EXPIRED = "expired", "Expired"


class Privilege(models.TextChoices):
    READ = "read", "Read"
