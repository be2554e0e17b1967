"""Audit actions written by governance (``<app>.<entity>.<verb>``), registered with ``ledger.actions``."""

from __future__ import annotations

from ledger.actions import register

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
    "SIGNING_KEY_PURGE",
    "SIGNING_KEY_ROTATE",
]

POLICY_UPDATE = register("governance.policy.update", "{actor} published access policy {target}")

REQUEST_CREATE = register("governance.access_request.create", "{actor} requested access: {target}")
# One approver's approval (a request may need several) ...
REQUEST_APPROVE = register("governance.access_request.approve", "{actor} approved access request {target}")
# ... and the request becoming approved (the last approval, or auto-approval by policy).
REQUEST_APPROVED = register("governance.access_request.approved", "Access request {target} became approved")
REQUEST_DENY = register("governance.access_request.deny", "{actor} denied access request {target}")
REQUEST_WITHDRAW = register("governance.access_request.withdraw", "{actor} withdrew access request {target}")
REQUEST_EXPIRE = register("governance.access_request.expire", "Access request {target} expired")
# A requested dataset's classification rose while pending: more approvals are needed.
REQUEST_ESCALATE = register(
    "governance.access_request.escalate", "Access request {target} needs more approvals (a dataset was reclassified)"
)

GRANT_CREATE = register("governance.grant.create", "Grant {target} was created")
GRANT_REVOKE = register("governance.grant.revoke", "{actor} revoked grant {target}")
GRANT_SUSPEND = register("governance.grant.suspend", "Grant {target} was suspended (its dataset was reclassified)")
GRANT_RESUME = register("governance.grant.resume", "Grant {target} was resumed")
GRANT_REAPPROVE = register("governance.grant.reapprove", "{actor} asked to re-approve grant {target}")
GRANT_EXPIRE = register("governance.grant.expire", "Grant {target} expired")
# The holder was given a login (a new password) for the grant's data-plane role; the password is not recorded.
GRANT_CREDENTIALS = register("governance.grant.credentials", "{actor} took a data-plane login for grant {target}")
# A signed grant token was issued; the event holds its jti and expiry, not the token.
GRANT_TOKEN = register("governance.grant.token", "{actor} was issued a signed token for grant {target}")

DECISION_DENY = register("governance.decision.deny", "Access denied to {actor}: {target}")

SIGNING_KEY_ROTATE = register("governance.signing_key.rotate", "Grant-token signing keys rotated ({target})")
SIGNING_KEY_PURGE = register("governance.signing_key.purge", "Retired grant-token signing key {target} removed")
