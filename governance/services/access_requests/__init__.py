"""Access requests: create, approve, deny, withdraw, expire, escalate, and re-approval of suspended grants.

State machine: pending → approved (every approval slot filled, or no slot: auto-approved by policy) | denied
(by an approver, or by the system when a dataset rises to a level that disallows the purpose) | withdrawn (by
the requester) | expired (no decision before ``expires_at``). Approval creates the grants in the same
transaction. Every transition is audited; every check happens before the first write, and each service runs
in one transaction, so a refused call writes nothing.
"""

from governance.services.access_requests.background import access_requests_escalate, access_requests_expire
from governance.services.access_requests.checks import MAX_DATASETS, DatasetRef
from governance.services.access_requests.common import SelfApproval
from governance.services.access_requests.create import access_request_create, grant_reapproval_request
from governance.services.access_requests.decide import (
    access_request_approve,
    access_request_deny,
    access_request_withdraw,
)

__all__ = [
    "MAX_DATASETS",
    "DatasetRef",
    "SelfApproval",
    "access_request_approve",
    "access_request_create",
    "access_request_deny",
    "access_request_withdraw",
    "access_requests_escalate",
    "access_requests_expire",
    "grant_reapproval_request",
]
