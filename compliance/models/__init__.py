from compliance.models.reports import ComplianceReport

__all__ = ["ComplianceReport"]
