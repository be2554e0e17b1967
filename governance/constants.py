"""Audit action names written by governance (``<app>.<entity>.<verb>``)."""

from __future__ import annotations

__all__ = [
    "DECISION_DENY",
    "GRANT_CREATE",
    "GRANT_CREDENTIALS",
    "GRANT_EXPIRE",
    "GRANT_REAPPROVE",
    "GRANT_RESUME",
    "GRANT_REVOKE",
    "GRANT_SUSPEND",
    "GRANT_TOKEN",
    "POLICY_UPDATE",
    "REQUEST_APPROVE",
    "REQUEST_APPROVED",
    "REQUEST_CREATE",
    "REQUEST_DENY",
    "REQUEST_ESCALATE",
    "REQUEST_EXPIRE",
    "REQUEST_WITHDRAW",
]

POLICY_UPDATE = "governance.policy.update"

REQUEST_CREATE = "governance.access_request.create"
# One approver's approval (a request may need several) ...
REQUEST_APPROVE = "governance.access_request.approve"
# ... and the request becoming approved (the last approval, or auto-approval by policy).
REQUEST_APPROVED = "governance.access_request.approved"
REQUEST_DENY = "governance.access_request.deny"
REQUEST_WITHDRAW = "governance.access_request.withdraw"
REQUEST_EXPIRE = "governance.access_request.expire"
# A requested dataset's classification rose while pending: more approvals are needed.
REQUEST_ESCALATE = "governance.access_request.escalate"

GRANT_CREATE = "governance.grant.create"
GRANT_REVOKE = "governance.grant.revoke"
GRANT_SUSPEND = "governance.grant.suspend"
GRANT_RESUME = "governance.grant.resume"
GRANT_REAPPROVE = "governance.grant.reapprove"
GRANT_EXPIRE = "governance.grant.expire"
# The holder was given a login (a new password) for the grant's data-plane role; the password is not recorded.
GRANT_CREDENTIALS = "governance.grant.credentials"
# A signed grant token was issued; the event holds its jti and expiry, not the token.
GRANT_TOKEN = "governance.grant.token"

DECISION_DENY = "governance.decision.deny"
