"""Audit actions written by compliance, registered with ``ledger.actions``.

The names keep the ``governance.`` prefix they had before compliance became its own app (the audit log's
vocabulary does not change with the code layout).
"""

from __future__ import annotations

from ledger.actions import register

__all__ = ["RECONSTRUCT", "REPORT_CREATE", "REPORT_VIEW"]

REPORT_CREATE = register("governance.compliance.report", "{actor} produced compliance report {target}")
REPORT_VIEW = register("governance.compliance.report_view", "{actor} opened compliance report {target}")
RECONSTRUCT = register("governance.compliance.reconstruct", "{actor} looked at a reconstruction (not stored)")
