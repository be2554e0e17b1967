from governance.models.generation import DecisionGeneration
from governance.models.grants import Grant, GrantSuspension
from governance.models.policy import PolicyVersion
from governance.models.requests import AccessRequest, AccessRequestItem, ApprovalSlot
from governance.models.signing import SigningKey

__all__ = [
    "AccessRequest",
    "AccessRequestItem",
    "ApprovalSlot",
    "DecisionGeneration",
    "Grant",
    "GrantSuspension",
    "PolicyVersion",
    "SigningKey",
]
