"""Hook points other parts of Steward (enforcement connectors, token issuers) listen to."""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from django.db import transaction
from django.dispatch import Signal

__all__ = ["announce_grant_change", "grant_changed"]

# Grants were created, revoked, suspended, resumed (re-approved or back within their level) or expired.
# Sent after the transaction that changed them commits, so receivers read committed rows; the expiry sweep may
# announce a grant again after a crash, so receivers must be idempotent. kwargs: ``grant_ids`` (list of UUIDs),
# ``change`` (a ``governance.choices.GrantChange`` value). Receivers should queue work (Celery), not do it inline.
grant_changed = Signal()


def announce_grant_change(change: str, grant_ids: Iterable[UUID]) -> None:
    """Send ``grant_changed`` for these grants once the current transaction commits."""
    ids = list(grant_ids)
    if not ids:
        return
    from governance.models import Grant

    transaction.on_commit(lambda: grant_changed.send(sender=Grant, grant_ids=ids, change=change))
