"""Lineage's scrape-time gauges for ``/metrics`` (registered with ``steward.metrics`` in ``LineageConfig.ready``)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from lineage.models import PropagationChange

__all__ = ["propagation_backlog"]


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
