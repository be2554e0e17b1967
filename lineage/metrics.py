"""Lineage's scrape-time gauges for ``/metrics`` (registered with ``steward.metrics`` in ``LineageConfig.ready``)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from lineage.models import PropagationChange
from lineage.services import inbox

__all__ = ["inbox_backlog", "propagation_backlog"]


def propagation_backlog() -> Iterable[GaugeMetricFamily]:
    """Pending propagation changes (durable to-dos) and the age of the oldest."""
    found = PropagationChange.objects.aggregate(n=Count("id"), oldest=Min("created_at"))
    yield GaugeMetricFamily(
        "steward_propagation_backlog", "Pending propagation changes (durable to-dos).", value=found["n"]
    )
    age = (timezone.now() - found["oldest"]).total_seconds() if found["oldest"] else 0.0
    yield GaugeMetricFamily(
        "steward_propagation_backlog_oldest_seconds", "Age of the oldest pending propagation change.", value=age
    )


def inbox_backlog() -> Iterable[GaugeMetricFamily]:
    """Queued ingestion, as ``inbox.status`` reads it: events waiting to be applied (and the limit at which calls
    are sent back), the age of the oldest, and events that could not be applied."""
    state = inbox.status(failures=0)
    yield GaugeMetricFamily(
        "steward_lineage_inbox_pending", "Queued lineage events waiting to be applied.", value=state.pending
    )
    age = (timezone.now() - state.oldest_pending_at).total_seconds() if state.oldest_pending_at else 0.0
    yield GaugeMetricFamily(
        "steward_lineage_inbox_oldest_seconds", "Age of the oldest queued lineage event waiting.", value=age
    )
    yield GaugeMetricFamily(
        "steward_lineage_inbox_failed",
        "Queued lineage events that could not be applied (GET /api/v1/lineage/inbox says why).",
        value=state.failed,
    )
    yield GaugeMetricFamily(
        "steward_lineage_inbox_limit",
        "Waiting events at which queued calls are answered 503 (STEWARD_LINEAGE_INBOX_LIMIT; 0: none).",
        value=state.limit or 0,
    )
