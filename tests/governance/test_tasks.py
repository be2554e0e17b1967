"""Governance tasks: scheduled by beat, and run by a real worker on a real Redis broker."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.core import mail
from django.utils import timezone

from governance.models import Grant
from governance.services.access_requests import access_request_create
from steward.celery import app


def test_beat_runs_the_expiry_sweeps_every_minute():
    import governance.tasks  # noqa: F401 - registers the tasks, as the worker's autodiscovery does

    scheduled = {entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert scheduled["governance.grants_expire"] == 60.0
    assert scheduled["governance.access_requests_expire"] == 60.0
    assert {"governance.grants_expire", "governance.access_requests_expire", "governance.notifications_send"} <= set(
        app.tasks
    )


@pytest.mark.django_db(transaction=True)
def test_a_worker_sends_the_mail_and_runs_the_sweep(settings, redis_url, data_scientist, make_dataset):
    from governance.tasks import grants_expire_task

    public = make_dataset("web.public.pages")
    settings.CELERY_TASK_ALWAYS_EAGER = False
    app.conf.task_always_eager = False
    # A Redis database of our own, so a worker of another checkout sharing the server takes none of our tasks.
    app.conf.broker_url = redis_url.rsplit("/", 1)[0] + "/11"
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            access_request_create(
                actor=data_scientist,
                datasets=[public.pk],
                purpose="analytics",
                justification="wiring",
                duration=timedelta(seconds=1),
            )
            for _ in range(100):
                if mail.outbox:
                    break
                time.sleep(0.1)
            assert mail.outbox and mail.outbox[0].to == [data_scientist.email]
            grant = Grant.objects.get()
            Grant.objects.filter(pk=grant.pk).update(
                valid_from=timezone.now() - timedelta(minutes=2), valid_until=timezone.now() - timedelta(minutes=1)
            )
            grants_expire_task.delay()
            for _ in range(100):
                if Grant.objects.get(pk=grant.pk).state == "expired":
                    break
                time.sleep(0.1)
        assert Grant.objects.get(pk=grant.pk).state == "expired"
    finally:
        app.conf.task_always_eager = True
        app.conf.broker_url = redis_url
