from governance.models.audit import AuditCheckpoint, AuditEvent, AuditHead
from governance.models.compliance import ComplianceReport
from governance.models.grants import Grant, GrantSuspension
from governance.models.history import HistoryRecord
from governance.models.policy import PolicyVersion
from governance.models.requests import AccessRequest, AccessRequestItem, ApprovalSlot
from governance.models.signing import SigningKey
from governance.models.tokens import ApiToken

__all__ = [
    "AccessRequest",
    "AccessRequestItem",
    "ApiToken",
    "ApprovalSlot",
    "AuditCheckpoint",
    "AuditEvent",
    "AuditHead",
    "ComplianceReport",
    "Grant",
    "GrantSuspension",
    "HistoryRecord",
    "PolicyVersion",
    "SigningKey",
]
