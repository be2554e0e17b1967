"""The Celery application. Periodic schedules all live here."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "steward.settings.base")

app = Celery("steward")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

app.conf.beat_schedule = {}
