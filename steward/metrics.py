"""Prometheus metrics (prometheus-client): what to count, the request timer, and the ``/metrics`` view.

Counters and histograms are module globals that services bump with one call (``metrics.decisions(...)``); a
failure to count never fails the work. Gauges that describe the system, not this process (propagation backlog,
Celery queue depth), are computed when scraped. With several server processes (granian or gunicorn workers), set
``PROMETHEUS_MULTIPROC_DIR`` (``make run`` does) so a scrape sums every worker's counters.

Who may scrape: clients from ``STEWARD_METRICS_ALLOWED_NETWORKS`` (loopback by default), or an admin (API
token as ``Authorization: Bearer``, or session). Metrics carry counts and route patterns, never names of
datasets or users.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import time
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from steward.identity import Role, has_role

__all__ = [
    "BACKEND_ERRORS",
    "DECISIONS",
    "INGESTION_EVENTS",
    "PROPAGATION_DRAIN_SECONDS",
    "RECONCILE_ERRORS",
    "REQUEST_SECONDS",
    "MetricsMiddleware",
    "add_gauge_source",
    "backend_error",
    "decisions",
    "ingestion",
    "metrics_view",
    "observe_request",
    "reconcile_error",
]

logger = logging.getLogger(__name__)

REQUEST_SECONDS = Histogram(
    "steward_http_request_duration_seconds",
    "Time to answer an HTTP request, by route pattern (not the concrete path), method and status.",
    ["endpoint", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
DECISIONS = Counter("steward_decisions_total", "Access decisions answered, by outcome.", ["decision"])
INGESTION_EVENTS = Counter(
    "steward_ingestion_events_total",
    "Ingested events by source and outcome (accepted: applied, queued or a duplicate; refused: invalid; deferred: "
    "sent back to be resent later, as a full lineage inbox does).",
    ["source", "outcome"],
)
PROPAGATION_DRAIN_SECONDS = Histogram(
    "steward_propagation_drain_seconds", "Time one propagation drain took to apply the pending changes."
)
RECONCILE_ERRORS = Counter(
    "steward_reconcile_errors_total", "Errors met while reconciling, by connector.", ["connector"]
)
BACKEND_ERRORS = Counter(
    "steward_backend_errors_total", "Search and graph backend failures, by kind and backend.", ["kind", "backend"]
)


def _safe(count: Callable[[], None]) -> None:
    try:
        count()
    except Exception:  # a metric must never break the work it describes
        logger.exception("could not update a metric")


# Labelled children looked up once (``labels()`` costs more than the increment on the decision API's hot path).
_LABELLED: dict[tuple[object, ...], Any] = {}


def _child(metric: Any, *labels: str) -> Any:
    key = (metric, *labels)
    child = _LABELLED.get(key)
    if child is None:
        child = _LABELLED[key] = metric.labels(*labels)
    return child


def decisions(allowed: int, denied: int) -> None:
    def count() -> None:
        if allowed:
            _child(DECISIONS, "allow").inc(allowed)
        if denied:
            _child(DECISIONS, "deny").inc(denied)

    _safe(count)


def ingestion(source: str, *, accepted: int = 0, refused: int = 0, deferred: int = 0) -> None:
    def count() -> None:
        if accepted:
            INGESTION_EVENTS.labels(source, "accepted").inc(accepted)
        if refused:
            INGESTION_EVENTS.labels(source, "refused").inc(refused)
        if deferred:
            INGESTION_EVENTS.labels(source, "deferred").inc(deferred)

    _safe(count)


def reconcile_error(connector: str) -> None:
    _safe(lambda: RECONCILE_ERRORS.labels(connector).inc())


def backend_error(kind: str, backend: str) -> None:
    _safe(lambda: BACKEND_ERRORS.labels(kind, backend).inc())


def observe_request(endpoint: str, method: str, status: int, seconds: float) -> None:
    _safe(lambda: _child(REQUEST_SECONDS, endpoint, method, str(status)).observe(seconds))


class MetricsMiddleware:
    """Times every request Django answers, labelled by its URL pattern (``api/v1/datasets/<uuid:pk>``)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        endpoint = match.route if match is not None and match.route else "unmatched"
        observe_request(endpoint, request.method or "", response.status_code, time.perf_counter() - started)
        return response


# --- scrape-time gauges ---------------------------------------------------------------------------------------


# Higher apps add gauges read at scrape time (lineage: the propagation backlog), registered in ``ready``:
# a lower layer never imports them (tests/steward/test_layers.py).
GaugeSource = Callable[[], Iterable[GaugeMetricFamily]]
_GAUGE_SOURCES: list[GaugeSource] = []


def add_gauge_source(source: GaugeSource) -> None:
    if source not in _GAUGE_SOURCES:
        _GAUGE_SOURCES.append(source)


class _SystemCollector:
    """Gauges about shared state, read from the database and the broker at scrape time."""

    def collect(self) -> Iterable[GaugeMetricFamily]:
        for source in _GAUGE_SOURCES:
            yield from source()
        depth = GaugeMetricFamily("steward_celery_queue_depth", "Messages waiting in a Celery queue.", labels=["queue"])
        for queue, n in _queue_depths().items():
            depth.add_metric([queue], n)
        yield depth


def _queue_depths() -> dict[str, int]:
    """Waiting messages per queue: Redis list lengths, files in the filesystem broker's folder."""
    queue = getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "celery")
    url = settings.CELERY_BROKER_URL
    try:
        if url.startswith(("redis://", "rediss://")):
            import redis

            client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
            try:
                # The sync client returns an int; redis-py types llen for both its sync and async clients.
                return {queue: int(cast(int, client.llen(queue)))}
            finally:
                client.close()
        if url.startswith("filesystem"):
            folder = Path(str(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]))
            return {queue: sum(1 for p in folder.glob("*.msg"))}
    except Exception:
        logger.warning("could not read the Celery queue depth", exc_info=True)
    return {}


# --- the view -------------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _networks() -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(n, strict=False) for n in settings.STEWARD_METRICS_ALLOWED_NETWORKS)


def _may_scrape(request: HttpRequest) -> bool:
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        address = None
    if address is not None and any(address in network for network in _networks()):
        return True

    user = request.user if getattr(request, "user", None) and request.user.is_authenticated else None
    if user is None and request.META.get("HTTP_AUTHORIZATION"):
        user = _token_user(request)
    return user is not None and has_role(user, Role.ADMIN)


def _token_user(request: HttpRequest) -> Any:
    """The user an API token names, through the API's configured authentication classes (settings)."""
    from rest_framework.request import Request
    from rest_framework.settings import api_settings

    drf_request = Request(request)
    for authentication in api_settings.DEFAULT_AUTHENTICATION_CLASSES:
        try:
            # api_settings imports the configured classes; the stubs type them as their dotted names.
            found = authentication().authenticate(drf_request)  # type: ignore[operator]
        except Exception:
            return None
        if found:
            return found[0]
    return None


def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus text format; 403 for anyone outside the allowed networks who is not an admin."""
    if not _may_scrape(request):
        return HttpResponse(
            "Metrics are for the monitoring network and admins.\n", status=403, content_type="text/plain"
        )
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY

        registry = REGISTRY
    body = generate_latest(registry)
    body += generate_latest(_system_registry())
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)


@lru_cache(maxsize=1)
def _system_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(_SystemCollector())
    return registry


def _clear_caches() -> Any:
    """For tests that change the allowed networks."""
    _networks.cache_clear()
