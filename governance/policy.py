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

__all__ = ["DEFAULT_PURPOSES", "LevelRule", "PolicyChange", "default_policy_document", "level_rules", "policy_diff"]

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


@dataclass(frozen=True)
class PolicyChange:
    """One field that differs between two policy documents; ``before``/``after`` are readable text ("" if absent)."""

    field: str
    before: str
    after: str

    @property
    def kind(self) -> str:
        return "added" if not self.before else "removed" if not self.after else "changed"


def _flatten(doc: dict[str, Any]) -> dict[str, str]:
    """A policy document as ``{field path: readable value}``, lists joined in their stored order."""
    flat: dict[str, str] = {}
    for key, description in (doc.get("purposes") or {}).items():
        flat[f"purposes.{key}"] = description or "(no description)"
    for code, rule in (doc.get("levels") or {}).items():
        flat[f"levels.{code}.approvers"] = ", ".join(rule.get("approvers") or []) or "none (auto-approved)"
        flat[f"levels.{code}.max_duration"] = str(rule.get("max_duration", ""))
        flat[f"levels.{code}.purposes"] = ", ".join(rule.get("purposes") or [])
    for combo in doc.get("toxic_combinations") or []:
        flat[f"toxic_combinations.{combo.get('name')}.tags"] = ", ".join(combo.get("tags") or [])
        flat[f"toxic_combinations.{combo.get('name')}.description"] = combo.get("description") or ""
    return flat


def policy_diff(before: dict[str, Any], after: dict[str, Any]) -> list[PolicyChange]:
    """The fields that differ from ``before`` to ``after``, in a stable order (purposes, levels, combinations)."""
    old, new = _flatten(before), _flatten(after)
    return [
        PolicyChange(field=key, before=old.get(key, ""), after=new.get(key, ""))
        for key in sorted(old.keys() | new.keys(), key=lambda k: (k.split(".")[0] != "purposes", k))
        if old.get(key, "") != new.get(key, "")
    ]
