"""What a policy says: the default document and the rules per classification level (pure, no queries).

The version in effect is read with ``governance.selectors.policy_current``; a new version is stored with
``governance.services.policy.policy_update``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from catalog.classification import levels as classification_levels
from governance.models import PolicyVersion
from steward.durations import parse_duration

__all__ = ["DEFAULT_PURPOSES", "LevelRule", "default_policy_document", "level_rules"]

DEFAULT_PURPOSES = {
    "analytics": "Exploratory analysis and ad-hoc questions.",
    "reporting": "Recurring reports and dashboards.",
    "model-training": "Training or evaluating machine-learning models.",
    "data-quality": "Checking and fixing the data's quality.",
    "incident-response": "Investigating a security or production incident.",
    "regulatory-reporting": "Reports owed to a regulator or an auditor.",
}


@dataclass(frozen=True)
class LevelRule:
    """What a policy says about one classification level."""

    approvers: tuple[str, ...]
    max_duration: timedelta
    purposes: frozenset[str]

    @property
    def auto_approve(self) -> bool:
        return not self.approvers


def default_policy_document(level_codes: list[str] | None = None) -> dict[str, Any]:
    """The demo defaults, by rank of the configured levels (C1..C4 by default).

    Lowest: auto-approved, 90 days. Second: the owner, 30 days. Third: owner and privacy officer, 7 days.
    Fourth and above: owner, privacy officer and steward, at most 8 hours, incident and regulatory work only.
    """
    codes = level_codes if level_codes is not None else [lvl.code for lvl in classification_levels()]
    everything = sorted(DEFAULT_PURPOSES)
    tiers = [
        ([], "P90D", everything),
        (["owner"], "P30D", everything),
        (["owner", "privacy-officer"], "P7D", [p for p in everything if p != "data-quality"]),
        (["owner", "privacy-officer", "data-steward"], "PT8H", ["incident-response", "regulatory-reporting"]),
    ]
    level_docs = {}
    for rank, code in enumerate(codes):
        approvers, max_duration, purposes = tiers[min(rank, len(tiers) - 1)]
        level_docs[code] = {"approvers": approvers, "max_duration": max_duration, "purposes": purposes}
    return {
        "purposes": dict(DEFAULT_PURPOSES),
        "levels": level_docs,
        "toxic_combinations": [
            {
                "name": "customer-with-raw-transactions",
                "tags": ["customer", "transactions.raw"],
                "description": "Customer records together with unaggregated payment transactions allow profiling "
                "individuals' spending; hold one or the other.",
            }
        ],
    }


def level_rules(policy: PolicyVersion) -> dict[str, LevelRule]:
    """The policy's rules by level code (documents are validated before they are stored)."""
    return {
        code: LevelRule(
            approvers=tuple(rule["approvers"]),
            max_duration=parse_duration(rule["max_duration"], f"levels.{code}.max_duration"),
            purposes=frozenset(rule["purposes"]),
        )
        for code, rule in policy.levels.items()
    }
