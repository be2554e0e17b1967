from ledger.models.audit import AuditCheckpoint, AuditEvent, AuditHead
from ledger.models.history import HistoryRecord

__all__ = ["AuditCheckpoint", "AuditEvent", "AuditHead", "HistoryRecord"]
