"""Background work queued after commit survives a broker that is down: a real Redis URL on a closed loopback port.

The user's write commits and answers; the log names the task and what catches up, never the broker password.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from catalog.models import Dataset
from steward.celery import app
from workspaces.models import Workspace

pytestmark = pytest.mark.django_db

DOWN = "redis://:s3cret-broker@127.0.0.1:1/0"


@pytest.fixture
def broker_down(settings, monkeypatch) -> Iterator[None]:
    """Celery on a Redis URL nobody listens on, not eager: ``delay`` really tries to publish."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    monkeypatch.setenv("CELERY_BROKER_URL", DOWN)  # Celery reads the environment before its configuration
    eager, url, pool, producers = app.conf.task_always_eager, app.conf.broker_url, app._pool, app.amqp._producer_pool
    app.conf.task_always_eager = False
    app.conf.broker_url = DOWN
    # Connections and producers made for the real broker by earlier tests would be reused otherwise.
    app._pool = app.amqp._producer_pool = None
    try:
        yield
    finally:
        if app._pool is not None:
            app._pool.force_close_all()
        app.conf.task_always_eager, app.conf.broker_url = eager, url
        app._pool, app.amqp._producer_pool = pool, producers


def test_a_dataset_write_succeeds_when_its_indexing_cannot_be_queued(
    broker_down, client_for, data_steward, caplog, django_capture_on_commit_callbacks
):
    caplog.set_level(logging.INFO)
    with django_capture_on_commit_callbacks(execute=True) as queued:
        res = client_for(data_steward).post(
            "/api/v1/datasets", {"namespace": "s3://lake", "name": "walrus/colony"}, format="json"
        )

    assert res.status_code == 201, res.content
    assert queued  # the indexing was queued after commit, and the broker refused it
    assert Dataset.objects.filter(name="walrus/colony").exists()
    assert "Could not queue catalog.search_index" in caplog.text
    assert "search_reindex" in caplog.text
    assert "s3cret-broker" not in caplog.text


def test_a_workspace_is_created_when_its_reconcile_cannot_be_queued(
    broker_down, client_for, data_scientist, workspace_templates, caplog, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as queued:
        res = client_for(data_scientist).post("/api/v1/workspaces", {"template": "jupyter-cpu"}, format="json")

    assert res.status_code == 201, res.content
    assert queued
    assert Workspace.objects.filter(pk=res.json()["id"], desired_state="running").exists()
    assert "Could not queue workspaces.reconcile" in caplog.text and "periodic workspace reconcile" in caplog.text
    assert "s3cret-broker" not in caplog.text
