"""The policy editor's form: a policy document <-> per-level inputs, and the service's field errors placed by field.

Parsing only; validation and storage stay in ``governance.services.policy`` (the API's service).
"""

from __future__ import annotations

import re
from typing import Any

from catalog.classification import levels as classification_levels
from governance.choices import ApproverRole
from steward.errors import ValidationFailed

__all__ = ["policy_document_from_form", "policy_form_context"]


# Blank rows the editor offers for new purposes and new toxic combinations.
BLANK_ROWS = 2


def _rows(post: Any, prefix: str, names: tuple[str, ...]) -> list[dict[str, str]]:
    """The numbered rows ``<prefix>-<name>-<i>`` a form posted, in order, without the ones left blank."""
    numbers = sorted(
        {int(m.group(1)) for key in post for m in [re.match(rf"^{prefix}-[a-z_]+-(\d+)$", key)] if m is not None}
    )
    rows = [{name: (post.get(f"{prefix}-{name}-{i}") or "").strip() for name in names} for i in numbers]
    return [row for row in rows if any(row.values())]


def policy_document_from_form(post: Any) -> dict[str, Any]:
    """Build a policy document from the editor's inputs (``purpose-key-0``, ``<code>-approvers``, ...)."""
    purposes = {row["key"]: row["description"] for row in _rows(post, "purpose", ("key", "description"))}
    level_docs = {
        lvl.code: {
            "approvers": post.getlist(f"{lvl.code}-approvers"),
            "max_duration": (post.get(f"{lvl.code}-max_duration") or "").strip(),
            "purposes": post.getlist(f"{lvl.code}-purposes"),
        }
        for lvl in classification_levels()
    }
    toxic = [
        {
            "name": row["name"],
            "tags": [t.strip() for t in row["tags"].split(",") if t.strip()],
            "description": row["description"],
        }
        for row in _rows(post, "toxic", ("name", "tags", "description"))
    ]
    return {"purposes": purposes, "levels": level_docs, "toxic_combinations": toxic}


def _errors_by_field(error: ValidationFailed | None) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for problem in error.problems if error else []:
        found.setdefault(problem.field or "", []).append(problem.message)
    return found


def _take(errors: dict[str, list[str]], *prefixes: str) -> list[str]:
    """Remove and return the messages whose field is one of ``prefixes`` or lies under it (named from there)."""
    taken: list[str] = []
    for field in list(errors):
        prefix = next((p for p in prefixes if field == p or field.startswith((p + ".", p + "["))), None)
        if prefix is not None:
            rest = field[len(prefix) :].lstrip(".")
            taken.extend(f"{rest}: {m}" if rest else m for m in errors.pop(field))
    return taken


def policy_form_context(document: dict[str, Any], error: ValidationFailed | None = None) -> dict[str, Any]:
    """What the editor template shows: one block per level with its inputs' values and each field's errors.

    ``document`` is the policy to show (the one in effect, or the one just submitted when it was refused).
    """
    errors = _errors_by_field(error)
    purposes = document.get("purposes") or {}
    level_docs = document.get("levels") or {}
    purpose_rows = [
        {"key": key, "description": description, "errors": _take(errors, f"purposes.{key}")}
        for key, description in purposes.items()
    ] + [{"key": "", "description": "", "errors": []} for _ in range(BLANK_ROWS)]
    for i, row in enumerate(purpose_rows):
        row["id"] = f"purpose-{i}"
    level_rows = []
    for lvl in classification_levels():
        rule = level_docs.get(lvl.code) or {}
        path = f"levels.{lvl.code}"
        level_rows.append(
            {
                "code": lvl.code,
                "name": lvl.name,
                "approvers": [
                    (value, label, value in (rule.get("approvers") or [])) for value, label in ApproverRole.choices
                ],
                "approvers_errors": _take(errors, f"{path}.approvers", f"{path}.auto_approve"),
                "max_duration": rule.get("max_duration", ""),
                "max_duration_errors": _take(errors, f"{path}.max_duration"),
                "purposes": [(key, key in (rule.get("purposes") or [])) for key in purposes],
                "purposes_errors": _take(errors, f"{path}.purposes"),
                "errors": _take(errors, path),
            }
        )
    toxic_rows = [
        {
            "name": combo.get("name") or "",
            "tags": ", ".join(combo.get("tags") or []),
            "description": combo.get("description") or "",
            "errors": _take(errors, f"toxic_combinations[{i}]"),
        }
        for i, combo in enumerate(document.get("toxic_combinations") or [])
    ] + [{"name": "", "tags": "", "description": "", "errors": []} for _ in range(BLANK_ROWS)]
    for i, row in enumerate(toxic_rows):
        row["id"] = f"toxic-{i}"
    return {
        "purposes": purpose_rows,
        "purposes_errors": _take(errors, "purposes"),
        "levels": level_rows,
        "toxic": toxic_rows,
        "toxic_errors": _take(errors, "toxic_combinations"),
        "other_errors": [f"{f}: {m}" if f else m for f, ms in errors.items() for m in ms],
    }
