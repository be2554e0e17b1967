"""Governance background work: signing-key rotation and purge."""

from __future__ import annotations

from typing import Any

from celery import shared_task


@shared_task(name="governance.signing_keys_maintain", acks_late=True)
def signing_keys_maintain_task() -> dict[str, Any]:
    """Rotate the grant-token signing key when due and delete retired keys whose tokens all expired (beat)."""
    from governance.services.signing import maintain

    return maintain()
