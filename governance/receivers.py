"""How governance hears about catalog changes, and carries grant changes into the data plane."""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

logger = logging.getLogger(__name__)


def on_effective_classification_changed(
    *, datasets: list[UUID], levels: dict[UUID, str] | None = None, **_: Any
) -> None:
    """Reclassified datasets: suspend (or resume) their grants and escalate pending requests, in the same
    transaction as the change, so no decision ever sees the new level with the old approval."""
    from governance.services.grants import on_reclassified

    on_reclassified(datasets, levels=levels)


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
    from catalog.models import Dataset
    from governance.models import Grant

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
