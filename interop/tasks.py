"""Scheduled push of catalog changes to Apache Atlas (only when STEWARD_ATLAS_URL is set)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="interop.atlas_push", acks_late=True)
def atlas_push_task() -> int:
    from interop.atlas import push_changes

    return push_changes()
