from ledger.models.audit import AuditEvent, AuditHead
from ledger.models.history import HistoryRecord

__all__ = ["AuditEvent", "AuditHead", "HistoryRecord"]
