"""The policy editor's form: a policy document <-> per-level inputs, and the service's field errors placed by field.

Parsing only; validation and storage stay in ``governance.services.policy`` (the API's service).
"""

from __future__ import annotations

from typing import Any

from catalog.classification import levels as classification_levels
from governance.choices import ApproverRole
from steward.errors import ValidationFailed

__all__ = ["policy_document_from_form", "policy_form_context"]


def _lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def policy_document_from_form(post: Any) -> dict[str, Any]:
    """Build a policy document from the editor's inputs (``purposes_text``, ``<code>-approvers``, ...)."""
    purposes: dict[str, str] = {}
    for line in _lines(post.get("purposes_text", "")):
        key, _, description = line.partition(":")
        purposes[key.strip()] = description.strip()
    level_docs = {
        lvl.code: {
            "approvers": post.getlist(f"{lvl.code}-approvers"),
            "max_duration": (post.get(f"{lvl.code}-max_duration") or "").strip(),
            "purposes": post.getlist(f"{lvl.code}-purposes"),
        }
        for lvl in classification_levels()
    }
    toxic = []
    for line in _lines(post.get("toxic_text", "")):
        name, _, rest = line.partition("|")
        tags, _, description = rest.partition("|")
        toxic.append(
            {
                "name": name.strip(),
                "tags": [t.strip() for t in tags.split(",") if t.strip()],
                "description": description.strip(),
            }
        )
    return {"purposes": purposes, "levels": level_docs, "toxic_combinations": toxic}


def _errors_by_field(error: ValidationFailed | None) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for problem in error.problems if error else []:
        found.setdefault(problem.field or "", []).append(problem.message)
    return found


def _take(errors: dict[str, list[str]], *prefixes: str) -> list[str]:
    """Remove and return the messages whose field is one of ``prefixes`` or lies under it."""
    taken: list[str] = []
    for field in [f for f in errors if any(f == p or f.startswith((p + ".", p + "[")) for p in prefixes)]:
        taken.extend(f"{field}: {m}" if field not in prefixes else m for m in errors.pop(field))
    return taken


def policy_form_context(document: dict[str, Any], error: ValidationFailed | None = None) -> dict[str, Any]:
    """What the editor template shows: one block per level with its inputs' values and each field's errors.

    ``document`` is the policy to show (the one in effect, or the one just submitted when it was refused).
    """
    errors = _errors_by_field(error)
    purposes = document.get("purposes") or {}
    level_docs = document.get("levels") or {}
    purpose_errors = _take(errors, "purposes")
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
    toxic_errors = _take(errors, "toxic_combinations")
    return {
        "purposes_text": "\n".join(f"{k}: {v}" for k, v in purposes.items()),
        "purposes_errors": purpose_errors,
        "levels": level_rows,
        "toxic_text": "\n".join(
            f"{c.get('name', '')} | {', '.join(c.get('tags') or [])} | {c.get('description', '')}"
            for c in document.get("toxic_combinations") or []
        ),
        "toxic_errors": toxic_errors,
        "other_errors": [f"{f}: {m}" if f else m for f, ms in errors.items() for m in ms],
    }
