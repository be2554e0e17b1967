"""The Celery application. Periodic schedules all live here."""

import os

from celery import Celery
from celery.signals import worker_process_init, worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "steward.settings.base")

app = Celery("steward")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

app.conf.beat_schedule = {}


@worker_ready.connect
@worker_process_init.connect
def _tune_gc(**_: object) -> None:
    """The worker (``--pool=solo``: this process; prefork: each child) is loaded: freeze what lives for the whole
    process and raise the collector's thresholds, as the web workers do (steward/gctune.py)."""
    from steward.gctune import tune

    tune()
