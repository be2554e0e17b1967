"""Connector services called by tasks and management commands (the data-plane reconcile loop)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from connectors.dataplane import DataGrant, ReconcileReport, get_connector
from connectors.dataplane.base import Progress

__all__ = ["dataplane_desired_grants", "dataplane_reconcile", "dataplane_remove"]


def dataplane_desired_grants() -> list[DataGrant]:
    """The grants that should have data-plane access now, from ``STEWARD_DATAPLANE_GRANTS_SELECTOR``.

    The selector is a dotted path to a function taking no arguments and returning an iterable of
    ``DataGrant`` for every grant currently in force (not revoked, not suspended, started); it may include
    grants on datasets no connector manages. The default is ``governance.selectors.dataplane_grants``; an
    empty setting raises ``ImproperlyConfigured`` rather than reconcile against nothing (which would drop
    every managed role).
    """
    path = settings.STEWARD_DATAPLANE_GRANTS_SELECTOR
    if not path:
        raise ImproperlyConfigured(
            "STEWARD_DATAPLANE_GRANTS_SELECTOR is not set: it names the function returning the grants in force"
        )
    try:
        selector = import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(f"STEWARD_DATAPLANE_GRANTS_SELECTOR={path!r} cannot be imported: {exc}") from exc
    grants = list(selector())
    wrong = next((g for g in grants if not isinstance(g, DataGrant)), None)
    if wrong is not None:
        raise ImproperlyConfigured(f"{path} returned a {type(wrong).__name__}, not a DataGrant")
    return grants


def dataplane_reconcile(*, now: datetime | None = None, progress: Progress | None = None) -> ReconcileReport:
    """Bring every managed data plane in line with the grants in force. Idempotent; safe to run any time."""
    desired = dataplane_desired_grants()
    return get_connector().reconcile(desired, now=now, progress=progress)


def dataplane_remove(*, grant_id: UUID) -> bool:
    """Remove one grant's data-plane access (its role and sessions). ``False`` if there was nothing to remove."""
    return get_connector().remove(grant_id)
