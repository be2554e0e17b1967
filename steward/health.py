"""``/healthz`` (the process is alive) and ``/readyz`` (database, broker and backends answer)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse

from steward.backends import load_backend

logger = logging.getLogger(__name__)


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_broker() -> None:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return
    from kombu import Connection

    # A fresh connection (not the pool) so a broker that went away is noticed now.
    with Connection(
        settings.CELERY_BROKER_URL, transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS, connect_timeout=2
    ) as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


def readyz(request: HttpRequest) -> JsonResponse:
    checks = {
        "database": _check_database,
        "broker": _check_broker,
        "search": lambda: load_backend("search").check(),
        "graph": lambda: load_backend("graph").ping(),
        "workspaces": lambda: load_backend("workspace").ping(),
    }
    if settings.STEWARD_DATAPLANE_OPTIONS.get("databases"):
        checks["dataplane"] = lambda: load_backend("dataplane").check()
    results: dict[str, str] = {}
    ok = True
    for name, check in checks.items():
        try:
            check()
            results[name] = "ok"
        except Exception as exc:  # report every failing dependency, not just the first
            ok = False
            results[name] = f"unavailable: {type(exc).__name__}"
            logger.warning("readiness check %s failed: %s", name, exc)
    return JsonResponse({"status": "ok" if ok else "unavailable", "checks": results}, status=200 if ok else 503)
