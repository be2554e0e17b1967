from governance.models.audit import AuditEvent, AuditHead
from governance.models.tokens import ApiToken

__all__ = ["ApiToken", "AuditEvent", "AuditHead"]
