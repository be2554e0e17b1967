"""Admin-site writes to records that have no domain service of their own (users, groups, workspace templates and
projects): the change is audited in its transaction, like every other write.

Action names: ``<app_label>.<model>.create|update|delete`` (``auth.user.update``, ``workspaces.template.delete``).
Snapshots hold the record's concrete fields and its many-to-many members by name; never a password or digest.
"""

from __future__ import annotations

from typing import Any

from django.db import models, transaction

from ledger import audit
from steward.identity import Actor

__all__ = ["admin_record_delete", "admin_record_password_set", "admin_record_saved", "admin_record_snapshot"]

_SECRET_FIELDS = frozenset({"password", "digest", "secret", "token"})


def admin_record_snapshot(obj: models.Model) -> dict[str, Any]:
    """The record as the audit log shows it: fields (secrets left out) and many-to-many members by name."""
    view: dict[str, Any] = {}
    for field in obj._meta.concrete_fields:
        if field.name in _SECRET_FIELDS:
            continue
        value = field.value_from_object(obj)
        view[field.name] = value if isinstance(value, (str, int, float, bool, list, dict, type(None))) else str(value)
    if obj.pk is not None:
        for field in obj._meta.many_to_many:
            view[field.name] = sorted(str(member) for member in getattr(obj, field.name).all())
    return view


def _action(obj: models.Model, verb: str) -> str:
    return f"{obj._meta.label_lower}.{verb}"


@transaction.atomic
def admin_record_saved(*, actor: Actor, obj: models.Model, before: dict[str, Any] | None) -> None:
    """Audit a record the admin form just saved (with its many-to-many members); ``before``: its snapshot
    before the change, ``None`` when it was created. An unchanged record records nothing."""
    after = admin_record_snapshot(obj)
    if before == after:
        return
    audit.record(
        actor=actor,
        action=_action(obj, "create" if before is None else "update"),
        target=obj,
        before=before,
        after=after,
    )


@transaction.atomic
def admin_record_delete(*, actor: Actor, obj: models.Model) -> None:
    """Delete the record and audit it in one transaction (cascades run their own history receivers)."""
    audit.record(actor=actor, action=_action(obj, "delete"), target=obj, before=admin_record_snapshot(obj))
    obj.delete()


@transaction.atomic
def admin_record_password_set(*, actor: Actor, obj: models.Model) -> None:
    """Audit that a user's password was set in the admin site (the event carries no password or hash)."""
    audit.record(actor=actor, action=_action(obj, "password_set"), target=obj)
