"""How governance hears about catalog changes."""

from __future__ import annotations

from typing import Any
from uuid import UUID


def on_effective_classification_changed(*, datasets: list[UUID], **_: Any) -> None:
    """Reclassified datasets: suspend (or resume) their grants and escalate pending requests, in the same
    transaction as the change, so no decision ever sees the new level with the old approval."""
    from governance.services.grants import on_reclassified

    on_reclassified(datasets)
