"""How governance hears about catalog changes, and carries grant changes into the data plane."""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from catalog.models import Dataset
from governance.models import Grant
from ledger.models import HistoryRecord

logger = logging.getLogger(__name__)


def on_effective_classification_changed(
    *, datasets: list[UUID], levels: dict[UUID, str] | None = None, **_: Any
) -> None:
    """Reclassified datasets: suspend (or resume) their grants and escalate pending requests, in the same
    transaction as the change, so no decision ever sees the new level with the old approval."""
    from governance.services.grants import on_reclassified

    on_reclassified(datasets, levels=levels)


# Set on a dataset or user about to be deleted: the grants and requests its deletion deletes or changes.
_DEPENDENTS = "_history_dependents"


def on_dataset_deleting(*, instance: Any, **_: Any) -> None:
    """Before a dataset goes: note the grants and requests the cascade will delete or change."""
    from governance.history_kinds import dependents_of_datasets

    instance.__dict__[_DEPENDENTS] = dependents_of_datasets([instance.pk])


def on_user_deleting(*, instance: Any, **_: Any) -> None:
    """Before a user goes: note the grants and requests the cascade will delete or change."""
    from governance.history_kinds import dependents_of_user

    instance.__dict__[_DEPENDENTS] = dependents_of_user(instance.pk)


def on_deleted(*, instance: Any, **_: Any) -> None:
    """After the cascade (same transaction): record the noted grants and requests as they are now."""
    from governance.history_kinds import capture_dependents

    keys = instance.__dict__.pop(_DEPENDENTS, None)
    if keys:
        capture_dependents(keys)


# Changes after which a grant's data-plane role must go (a resumed grant gets a new login on request).
_ENDING_CHANGES = frozenset({"revoked", "suspended", "expired"})


def on_grant_changed(*, grant_ids: list[UUID], change: str, **_: Any) -> None:
    """Revoked, suspended or expired grants: queue removal of their data-plane roles (idempotent; the signal may
    repeat). Sent after commit, so the grants read here are committed."""
    if change not in _ENDING_CHANGES:
        return
    from governance.services.enforcement import grants_dataplane_remove

    try:
        grants_dataplane_remove(grant_ids)
    except Exception:
        # The change has committed and its caller must hear so; the next reconcile pass removes what is left.
        logger.exception(
            "Could not queue data-plane removal of %d grant(s); reconcile will remove them.", len(grant_ids)
        )


def grant_holders_q(model: type, viewer: Any) -> Q | None:
    """Hidden datasets the viewer holds a grant on, valid now (window, not revoked, not suspended)."""
    if model is not Dataset or viewer.user_id is None:
        return None
    now = timezone.now()
    held = Grant.objects.filter(
        dataset_id=OuterRef("pk"),
        user_id=viewer.user_id,
        valid_from__lte=now,
        valid_until__gt=now,
        revoked_at__isnull=True,
        suspended_at__isnull=True,
    )
    return Q(Exists(held))


def on_post_migrate(sender: Any, using: str = "default", **kwargs: Any) -> None:
    """Record the policy in force once the tables exist (a no-op when its history is already current)."""
    from django.db import connections, transaction

    from governance.history_kinds import capture_policy
    from governance.models import PolicyVersion

    tables = connections[using].introspection.table_names()
    if HistoryRecord._meta.db_table not in tables or PolicyVersion._meta.db_table not in tables:
        return  # migrating backwards, or only part of the way
    with transaction.atomic(using=using):
        capture_policy()
