from governance.models.audit import AuditEvent, AuditHead
from governance.models.signing import SigningKey
from governance.models.tokens import ApiToken

__all__ = ["ApiToken", "AuditEvent", "AuditHead", "SigningKey"]
