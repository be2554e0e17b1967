"""Workspace constants: timing of the reconciler and of credential renewal (audit actions: ``actions.py``)."""

from __future__ import annotations

from datetime import timedelta

__all__ = [
    "CREDENTIALS_RENEW_BEFORE",
    "RETRY_BACKOFF_MAX_SECONDS",
    "RETRY_BACKOFF_SECONDS",
]

# A mount's credentials are renewed when they would expire within this (grant tokens live at most one hour,
# so a running workspace gets fresh ones about every 40 minutes; the reconcile period is far shorter).
CREDENTIALS_RENEW_BEFORE = timedelta(minutes=20)
# After an unreachable connector: retry after 10 s, 20 s, 40 s ... at most 5 minutes.
RETRY_BACKOFF_SECONDS = 10
RETRY_BACKOFF_MAX_SECONDS = 300
