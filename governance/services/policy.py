"""The access policy: validate and store a new version (reads: ``governance.selectors.policy_current``).

A policy version is immutable. An edit stores the next version; requests record the version they were
judged by and grants the version they were approved under, so audits can read what applied.
"""

from __future__ import annotations

import re
from typing import Any

from django.db import IntegrityError, transaction

from catalog.classification import levels as classification_levels
from governance.actions import POLICY_UPDATE
from governance.choices import ApproverRole
from governance.history_kinds import capture_policy
from governance.models import PolicyVersion
from governance.selectors import policy_current
from ledger import audit
from steward.durations import format_duration, parse_duration
from steward.errors import Conflict, FieldProblem, PermissionDenied, ValidationFailed
from steward.identity import Actor, Role, has_role, user_or_none

__all__ = ["policy_can_edit", "policy_document_validate", "policy_update"]

_PURPOSE_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_TAG_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")


def policy_can_edit(user: Any) -> bool:
    """Only admins change the access policy (everyone signed in may read it)."""
    return has_role(user, Role.ADMIN)


def _problem(problems: list[tuple[str, str]], field: str, message: str) -> None:
    problems.append((field, message))


def policy_document_validate(doc: Any) -> dict[str, Any]:
    """Check a policy document and return it normalised; raise one 400 naming every bad field."""
    problems: list[tuple[str, str]] = []
    if not isinstance(doc, dict):
        raise ValidationFailed.one("body", "The policy must be a JSON object.", "invalid_type")
    for key in sorted(set(doc) - {"purposes", "levels", "toxic_combinations"}):
        _problem(problems, key, "Unknown field.")

    purposes = doc.get("purposes")
    clean_purposes: dict[str, str] = {}
    if not isinstance(purposes, dict) or not purposes:
        _problem(problems, "purposes", "Give at least one purpose, as {key: description}.")
    else:
        for key, description in purposes.items():
            if not _PURPOSE_RE.match(str(key)):
                _problem(problems, f"purposes.{key}", "Use lower-case letters, digits, '.', '_' or '-' (at most 64).")
            elif not isinstance(description, str):
                _problem(problems, f"purposes.{key}", "The description must be a string.")
            else:
                clean_purposes[key] = description

    codes = [lvl.code for lvl in classification_levels()]
    level_docs = doc.get("levels")
    clean_levels: dict[str, Any] = {}
    if not isinstance(level_docs, dict):
        _problem(problems, "levels", f"Give one rule per classification level ({', '.join(codes)}).")
        level_docs = {}
    for code in codes:
        if code not in level_docs:
            _problem(problems, f"levels.{code}", "Missing: every classification level needs a rule.")
    for code in level_docs:
        if code not in codes:
            _problem(problems, f"levels.{code}", f"Unknown classification level; use {', '.join(codes)}.")
    for code in codes:
        rule = level_docs.get(code)
        if rule is None:
            continue
        path = f"levels.{code}"
        if not isinstance(rule, dict):
            _problem(problems, path, "Must be an object with approvers, max_duration and purposes.")
            continue
        for key in sorted(set(rule) - {"approvers", "max_duration", "purposes", "auto_approve"}):
            _problem(problems, f"{path}.{key}", "Unknown field.")
        approvers = rule.get("approvers")
        if not isinstance(approvers, list) or any(a not in ApproverRole.values for a in approvers):
            _problem(
                problems,
                f"{path}.approvers",
                f"A list of roles from {', '.join(ApproverRole.values)} (empty: auto-approved).",
            )
            approvers = []
        elif len(set(approvers)) != len(approvers):
            _problem(problems, f"{path}.approvers", "Each role at most once.")
        auto = rule.get("auto_approve")
        if auto is not None and auto != (not approvers):
            _problem(
                problems,
                f"{path}.auto_approve",
                "Contradicts approvers: a level is auto-approved exactly when it lists no approvers.",
            )
        max_duration = "PT0S"
        try:
            max_duration = format_duration(parse_duration(rule.get("max_duration"), f"{path}.max_duration"))
        except ValidationFailed as exc:
            problems.extend((p.field or path, p.message) for p in exc.problems)
        level_purposes = rule.get("purposes")
        if not isinstance(level_purposes, list) or not level_purposes:
            _problem(problems, f"{path}.purposes", "List the purposes allowed at this level (at least one).")
            level_purposes = []
        else:
            unknown = [p for p in level_purposes if p not in clean_purposes]
            if unknown and clean_purposes:
                _problem(
                    problems, f"{path}.purposes", f"Not among the policy's purposes: {', '.join(map(str, unknown))}."
                )
        order = [a for a in ApproverRole.values if a in approvers]
        clean_levels[code] = {
            "approvers": order,
            "max_duration": max_duration,
            "purposes": sorted(dict.fromkeys(level_purposes)),
        }

    toxic = doc.get("toxic_combinations", [])
    clean_toxic: list[dict[str, Any]] = []
    if not isinstance(toxic, list):
        _problem(problems, "toxic_combinations", "A list of {name, tags, description}.")
        toxic = []
    names: set[str] = set()
    for i, combo in enumerate(toxic):
        path = f"toxic_combinations[{i}]"
        if not isinstance(combo, dict):
            _problem(problems, path, "Must be an object with name, tags and description.")
            continue
        for key in sorted(set(combo) - {"name", "tags", "description"}):
            _problem(problems, f"{path}.{key}", "Unknown field.")
        name = combo.get("name")
        if not isinstance(name, str) or not name.strip():
            _problem(problems, f"{path}.name", "Required.")
        elif name in names:
            _problem(problems, f"{path}.name", "Names must be unique.")
        else:
            names.add(name)
        tags = combo.get("tags")
        if not isinstance(tags, list) or len(set(map(str, tags))) < 2:
            _problem(problems, f"{path}.tags", "At least two different tag keys.")
            tags = []
        elif not all(isinstance(t, str) and _TAG_RE.match(t) for t in tags):
            _problem(problems, f"{path}.tags", "Tag keys: lower-case letters, digits, '.', '_' or '-'.")
        description = combo.get("description", "")
        if not isinstance(description, str):
            _problem(problems, f"{path}.description", "Must be a string.")
            description = ""
        clean_toxic.append({"name": name, "tags": sorted(set(tags)), "description": description})

    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise ValidationFailed(
            f"{first[0]}: {first[1]}{more}", problems=[FieldProblem(f, m, "invalid_policy") for f, m in problems]
        )
    return {"purposes": clean_purposes, "levels": clean_levels, "toxic_combinations": clean_toxic}


@transaction.atomic
def policy_update(
    *, actor: Actor, document: Any, note: str = "", base_version: int | None = None
) -> tuple[PolicyVersion, bool]:
    """Store ``document`` as the next policy version (admins only); returns it and whether it is new.

    ``base_version``, when given, must be the version in effect (a 409 otherwise: someone else edited it).
    A document equal to the one in effect stores nothing.
    """
    if not policy_can_edit(actor):
        raise PermissionDenied("Only admins change the access policy.")
    clean = policy_document_validate(document)
    current = policy_current()
    if base_version is not None and base_version != current.version:
        raise Conflict(
            f"The policy is at version {current.version}, not {base_version}; reload it and apply your change again."
        )
    if current.version and clean == current.document():
        return current, False
    try:
        with transaction.atomic():
            new = PolicyVersion.objects.create(
                version=current.version + 1,
                created_by=user_or_none(actor),
                created_by_name=getattr(actor, "username", "") or "system",
                note=note or "",
                **clean,
            )
    except IntegrityError:
        raise Conflict("Someone else changed the policy at the same moment; reload it and try again.") from None
    capture_policy(at=new.created_at)
    audit.record(
        actor=actor,
        action=POLICY_UPDATE,
        target=new,
        before=current.document() if current.version else None,
        after=clean,
        reason=note or "",
    )
    return new, True
