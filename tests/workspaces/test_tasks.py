"""Workspace tasks: scheduled by beat, and run by a real worker on the real Redis broker (local connector)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings

from connectors.workspaces import get_connector
from governance.services.access_requests import access_request_create
from governance.services.grants import grant_revoke
from steward.celery import app
from workspaces.models import Workspace
from workspaces.services import workspace_create


def test_beat_runs_the_periodic_pass():
    import workspaces.tasks  # noqa: F401 - registers the tasks, as the worker's autodiscovery does

    scheduled = {entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert scheduled["workspaces.reconcile_due"] == float(settings.STEWARD_WORKSPACE_RECONCILE_SECONDS) == 60.0
    assert {"workspaces.reconcile", "workspaces.reconcile_due", "workspaces.grants_changed"} <= set(app.tasks)


def _route(routes: dict | None) -> None:
    app.conf.task_routes = routes
    app.amqp.flush_routes()
    app.amqp.__dict__.pop("router", None)


def _until(predicate: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


@pytest.mark.django_db(transaction=True)
def test_a_worker_reconciles_after_commit_and_follows_a_revocation(
    settings, redis_url, local_connector, data_scientist, make_dataset
):
    orders, customers = make_dataset("sales.public.orders"), make_dataset("crm.public.customers")
    settings.CELERY_TASK_ALWAYS_EAGER = False
    app.conf.task_always_eager = False
    app.conf.broker_url = redis_url
    # A queue of this run's own, so a worker of a parallel test run never takes our messages.
    queue = f"workspaces-test-{uuid.uuid4().hex[:8]}"
    _route({"workspaces.*": {"queue": queue}, "governance.*": {"queue": queue}})
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10, queues=[queue]):
            request = access_request_create(
                actor=data_scientist,
                datasets=[orders.pk, customers.pk],
                purpose="analytics",
                justification="wiring",
                duration=timedelta(days=1),
            )
            workspace = workspace_create(
                actor=data_scientist, template="jupyter-cpu", datasets=[orders.pk, customers.pk]
            )
            _until(lambda: Workspace.objects.get(pk=workspace.pk).state == "running", "the workspace to run")
            assert workspace.datasets.filter(mounted=True).count() == 2

            held = request.grants.get(dataset=customers, user=data_scientist)
            grant_revoke(actor=data_scientist, grant=held, reason="wiring")

            _until(
                lambda: (
                    set(workspace.datasets.filter(mounted=True).values_list("dataset__name", flat=True))
                    == {"sales.public.orders"}
                ),
                "the revocation to reach the workspace",
            )
            assert get_connector().pid_of(workspace.pk) is not None
    finally:
        app.conf.task_always_eager = True
        _route(None)
        app.amqp.queues.select([app.conf.task_default_queue])
