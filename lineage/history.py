"""What lineage keeps in history (``ledger.history``): the state loader of declassifications.

Kind ``lineage.declassification`` (key: its id): the job, the blocked tag keys, the state, who asked and who
decided when, and the interval the block holds. Edges, column edges and propagated tags are intervals already
(``valid_from``/``valid_to``) and are not copied.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from ledger import history
from lineage.models import Declassification
from steward.lookups import UUIDs

__all__ = [
    "DECLASSIFICATION",
    "capture_declassifications",
    "declassifications_of_tag",
    "load_declassifications",
    "register",
]

DECLASSIFICATION = "lineage.declassification"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def load_declassifications(keys: list[str]) -> dict[str, dict[str, Any]]:
    ids = UUIDs([UUID(k) for k in keys])
    tag_keys: dict[UUID, list[str]] = defaultdict(list)
    for decl_id, key in Declassification.tags.through.objects.filter(declassification_id__any_of=ids).values_list(
        "declassification_id", "tag__key"
    ):
        tag_keys[decl_id].append(key)
    states: dict[str, dict[str, Any]] = {}
    for d in Declassification.objects.filter(pk__any_of=ids).select_related("job", "requested_by", "decided_by"):
        states[str(d.pk)] = {
            "job_id": str(d.job_id),
            "job": f"{d.job.namespace}/{d.job.name}",
            "tags": sorted(tag_keys.get(d.pk, ())),
            "justification": d.justification,
            "state": d.state,
            "requested_by": d.requested_by.get_username(),
            "requested_at": _iso(d.requested_at),
            "decided_by": d.decided_by.get_username() if d.decided_by else None,
            "decided_at": _iso(d.decided_at),
            "decision_reason": d.decision_reason,
            "valid_from": _iso(d.valid_from),
            "valid_to": _iso(d.valid_to),
        }
    return states


def capture_declassifications(ids: Iterable[Any], *, at: datetime | None = None) -> int:
    """Record these declassifications' state (call inside the transaction that changed them)."""
    return history.capture(DECLASSIFICATION, ids, at=at)


def declassifications_of_tag(tag_id: int) -> set[str]:
    """Declassifications naming this tag (deleting the tag takes it off them)."""
    return {
        str(pk)
        for pk in Declassification.tags.through.objects.filter(tag_id=tag_id).values_list(
            "declassification_id", flat=True
        )
    }


def register() -> None:
    history.register(
        DECLASSIFICATION,
        load_declassifications,
        lambda: (str(pk) for pk in Declassification.objects.values_list("pk", flat=True).iterator()),
    )
