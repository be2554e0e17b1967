from governance.models.grants import Grant, GrantSuspension
from governance.models.policy import PolicyVersion
from governance.models.requests import AccessRequest, AccessRequestItem, ApprovalSlot
from governance.models.signing import SigningKey

__all__ = [
    "AccessRequest",
    "AccessRequestItem",
    "ApprovalSlot",
    "Grant",
    "GrantSuspension",
    "PolicyVersion",
    "SigningKey",
]
